"""IndexStore on real FAISS and SQL: tail replay, copy-on-write, rebuilds, checkpoints."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from data.db import make_engine, make_sessionmaker
from data.models import DEFAULT_COLLECTION, Chunk, Collection, Document, IndexLog
from retrieval.index_policy import IndexPolicy
from retrieval.index_store import IndexStore, log_head
from retrieval.vector_index import VectorIndex, read_stamp

DIM = 8
_rng = np.random.default_rng(1234)


@pytest.fixture(params=["flat", "ivf"])
def policy(request: pytest.FixtureRequest) -> IndexPolicy:
    """Every test runs on both index kinds: "ivf" turns any non-empty index into IVF."""
    return IndexPolicy(exact_max=10**9 if request.param == "flat" else 0)


@pytest.fixture
def coll_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == DEFAULT_COLLECTION))
        assert cid is not None
        return cid


@pytest.fixture
def doc_id(sessions: sessionmaker[Session], coll_id: int) -> int:
    with sessions() as s:
        doc = Document(
            collection_id=coll_id,
            filename="a.txt",
            content_hash="0" * 64,
            media_type="text/plain",
            size=1,
            status="indexed",
        )
        s.add(doc)
        s.commit()
        return doc.id


def unit_vectors(n: int) -> np.ndarray:
    v = _rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_chunks(
    sessions: sessionmaker[Session], cid: int, did: int, n: int, generation: int = 1
) -> list[int]:
    """Insert chunk rows and their +1 log entries in one commit, as the processor does."""
    with sessions() as s:
        rows = [
            Chunk(
                document_id=did,
                collection_id=cid,
                generation=generation,
                ordinal=i,
                start_offset=0,
                end_offset=1,
                text=f"chunk {i}",
                token_count=2,
                text_hash=f"{i:064d}",
                vector=vec.tobytes(),
            )
            for i, vec in enumerate(unit_vectors(n))
        ]
        s.add_all(rows)
        s.flush()
        s.add_all(
            [IndexLog(collection_id=cid, generation=generation, chunk_id=r.id, op=1) for r in rows]
        )
        s.commit()
        return [r.id for r in rows]


def remove_chunks(sessions: sessionmaker[Session], cid: int, ids: list[int]) -> None:
    """Log -1 entries and delete the rows in one commit, as the processor does."""
    with sessions() as s:
        s.add_all([IndexLog(collection_id=cid, chunk_id=i, op=-1) for i in ids])
        s.execute(delete(Chunk).where(Chunk.id.in_(ids)))
        s.commit()


def ids_of(idx: VectorIndex) -> set[int]:
    return set(idx.contents()[0].tolist())


def current(store: IndexStore, sessions: sessionmaker[Session], cid: int) -> VectorIndex:
    """The caught-up index; then the kind its policy wants, as the writer's checkpoint does."""
    with sessions() as s:
        idx = store.current(s, cid, 1, DIM)
        if store.reshape(s, cid, 1):
            idx = store.current(s, cid, 1, DIM)
            assert idx.kind == store.policy.kind_for(idx.ntotal)
        return idx


def head(sessions: sessionmaker[Session], cid: int) -> int:
    with sessions() as s:
        return log_head(s, cid)


def no_rebuild(store: IndexStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this store fail loudly if it falls back to a full rebuild from SQL."""

    def boom(*_args: object) -> VectorIndex:
        raise AssertionError("rebuilt from SQL instead of replaying the tail")

    monkeypatch.setattr(store, "_rebuild", boom)


def test_catch_up_from_empty_state(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    assert ids_of(current(store, sessions, coll_id)) == set()
    ids = add_chunks(sessions, coll_id, doc_id, 5)
    assert not store.path(coll_id).exists()
    idx = current(store, sessions, coll_id)
    assert ids_of(idx) == set(ids)
    assert idx.kind == ("ivf" if policy.exact_max == 0 else "flat")
    assert idx.seq == head(sessions, coll_id) > 0
    with sessions() as s:
        vec = np.frombuffer(s.get(Chunk, ids[2]).vector, dtype=np.float32)  # type: ignore[union-attr]
    _, found = idx.search(vec[None, :], 1)
    assert found[0, 0] == ids[2]


def test_catch_up_from_checkpoint_plus_tail(
    tmp_path: Path,
    policy: IndexPolicy,
    sessions: sessionmaker[Session],
    coll_id: int,
    doc_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = IndexStore(tmp_path, policy=policy)
    first = add_chunks(sessions, coll_id, doc_id, 4)
    current(writer, sessions, coll_id)
    assert writer.checkpoint(coll_id, 1, {"collection_id": coll_id})
    stamp = read_stamp(writer.path(coll_id))
    tail = add_chunks(sessions, coll_id, doc_id, 3)
    remove_chunks(sessions, coll_id, first[:2])

    fresh = IndexStore(tmp_path, policy=policy)  # a restarted process: only the file and SQL
    no_rebuild(fresh, monkeypatch)
    idx = current(fresh, sessions, coll_id)
    assert ids_of(idx) == set(first[2:]) | set(tail)
    assert idx.seq == head(sessions, coll_id) > stamp


def test_reader_object_is_not_mutated_by_later_updates(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    first = add_chunks(sessions, coll_id, doc_id, 3)
    before = current(store, sessions, coll_id)
    seq_before = before.seq
    added = add_chunks(sessions, coll_id, doc_id, 2)
    remove_chunks(sessions, coll_id, [first[0]])
    after = current(store, sessions, coll_id)
    assert after is not before
    assert ids_of(before) == set(first) and before.seq == seq_before
    assert ids_of(after) == set(first[1:]) | set(added)


def test_up_to_date_index_is_returned_as_is(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    add_chunks(sessions, coll_id, doc_id, 2)
    assert current(store, sessions, coll_id) is current(store, sessions, coll_id)


def test_removes_are_applied(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    ids = add_chunks(sessions, coll_id, doc_id, 4)
    assert ids_of(current(store, sessions, coll_id)) == set(ids)
    remove_chunks(sessions, coll_id, ids[1:3])
    idx = current(store, sessions, coll_id)
    assert ids_of(idx) == {ids[0], ids[3]} and idx.ntotal == 2
    assert idx.kind == ("ivf" if policy.exact_max == 0 else "flat")
    assert idx.vector(ids[1]) is None and idx.vector(ids[0]) is not None
    remove_chunks(sessions, coll_id, [ids[0], ids[3]])
    idx = current(store, sessions, coll_id)
    assert ids_of(idx) == set() and idx.ntotal == 0


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_added_then_removed_in_one_tail_is_absent(
    warm: bool,
    tmp_path: Path,
    policy: IndexPolicy,
    sessions: sessionmaker[Session],
    coll_id: int,
    doc_id: int,
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    keep = add_chunks(sessions, coll_id, doc_id, 2)
    if warm:
        current(store, sessions, coll_id)
    gone = add_chunks(sessions, coll_id, doc_id, 3)
    remove_chunks(sessions, coll_id, gone)
    assert ids_of(current(store, sessions, coll_id)) == set(keep)


def test_corrupt_file_is_rebuilt_from_sql(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    writer = IndexStore(tmp_path, policy=policy)
    ids = add_chunks(sessions, coll_id, doc_id, 4)
    current(writer, sessions, coll_id)
    assert writer.checkpoint(coll_id, 1, {})
    path = writer.path(coll_id)
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<I", raw[8:12])
    path.write_bytes(raw[: 12 + hlen + 20])  # header intact, FAISS payload truncated
    assert read_stamp(path) > 0
    remove_chunks(sessions, coll_id, ids[:1])
    more = add_chunks(sessions, coll_id, doc_id, 2)

    idx = current(IndexStore(tmp_path, policy=policy), sessions, coll_id)
    assert ids_of(idx) == set(ids[1:]) | set(more)
    assert idx.dim == DIM and idx.seq == head(sessions, coll_id)


def test_garbage_file_is_ignored_and_rebuilt(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    ids = add_chunks(sessions, coll_id, doc_id, 3)
    store = IndexStore(tmp_path, policy=policy)
    store.path(coll_id).parent.mkdir(parents=True, exist_ok=True)
    store.path(coll_id).write_bytes(b"\x00garbage" * 10)
    assert ids_of(current(store, sessions, coll_id)) == set(ids)


def test_file_with_wrong_dim_is_rebuilt(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    ids = add_chunks(sessions, coll_id, doc_id, 3)
    store = IndexStore(tmp_path, policy=policy)
    other = VectorIndex.empty(16)
    other.apply(np.asarray([ids[0], 999_999]), np.eye(2, 16, dtype=np.float32), np.zeros(0), 1)
    other.seq = 1  # older than the head, so the tail replays on top of it
    other.save(store.path(coll_id), {})
    idx = current(store, sessions, coll_id)
    assert idx.dim == DIM
    assert ids_of(idx) == set(ids)
    _, found = idx.search(np.ones((1, DIM), np.float32), 10)
    assert set(found[0].tolist()) == set(ids)


def test_checkpoint_only_when_something_is_newer(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    store = IndexStore(tmp_path, policy=policy)
    meta = {"collection_id": coll_id, "model_id": "test"}
    assert store.checkpoint(coll_id, 1, meta) is False  # nothing in memory
    add_chunks(sessions, coll_id, doc_id, 2)
    current(store, sessions, coll_id)
    assert store.checkpoint(coll_id, 1, meta) is True
    assert read_stamp(store.path(coll_id)) == head(sessions, coll_id)
    assert store.checkpoint(coll_id, 1, meta) is False
    add_chunks(sessions, coll_id, doc_id, 1)
    assert store.checkpoint(coll_id, 1, meta) is False  # memory has not caught up yet
    current(store, sessions, coll_id)
    assert store.checkpoint(coll_id, 1, meta) is True
    _, saved = VectorIndex.load(store.path(coll_id))
    assert saved["model_id"] == "test" and saved["seq"] == head(sessions, coll_id)


def test_second_store_sees_the_same_ids(
    tmp_path: Path,
    policy: IndexPolicy,
    db_url: str,
    sessions: sessionmaker[Session],
    coll_id: int,
    doc_id: int,
) -> None:
    writer = IndexStore(tmp_path, policy=policy)
    first = add_chunks(sessions, coll_id, doc_id, 5)
    current(writer, sessions, coll_id)
    writer.checkpoint(coll_id, 1, {})
    later = add_chunks(sessions, coll_id, doc_id, 2)
    remove_chunks(sessions, coll_id, [first[1], later[0]])
    w = current(writer, sessions, coll_id)

    other_engine = make_engine(db_url)  # another process: its own engine and store
    try:
        other = make_sessionmaker(other_engine)
        reader = IndexStore(tmp_path, policy=policy)
        r = current(reader, other, coll_id)
        assert ids_of(r) == ids_of(w) == (set(first) | set(later)) - {first[1], later[0]}
        assert r.seq == w.seq
        more = add_chunks(sessions, coll_id, doc_id, 1)
        assert ids_of(current(reader, other, coll_id)) == ids_of(w) | set(more)
    finally:
        other_engine.dispose()


def test_collections_are_kept_apart(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    with sessions() as s:
        second = Collection(name="second")
        s.add(second)
        s.commit()
        doc2 = Document(
            collection_id=second.id,
            filename="b.txt",
            content_hash="1" * 64,
            media_type="text/plain",
            size=1,
            status="indexed",
        )
        s.add(doc2)
        s.commit()
        cid2, did2 = second.id, doc2.id
    a = add_chunks(sessions, coll_id, doc_id, 2)
    b = add_chunks(sessions, cid2, did2, 3)
    store = IndexStore(tmp_path, policy=policy)
    assert ids_of(current(store, sessions, coll_id)) == set(a)
    assert ids_of(current(store, sessions, cid2)) == set(b)


def test_rebuilt_index_rewrites_the_bad_file(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    ids = add_chunks(sessions, coll_id, doc_id, 3)
    writer = IndexStore(tmp_path, policy=policy)
    current(writer, sessions, coll_id)
    assert writer.checkpoint(coll_id, 1, {})
    path = writer.path(coll_id)
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<I", raw[8:12])
    path.write_bytes(raw[: 12 + hlen + 20])  # stamp says current, payload is broken
    store = IndexStore(tmp_path, policy=policy)
    current(store, sessions, coll_id)
    assert store.checkpoint(coll_id, 1, {})  # rewritten although nothing changed in SQL
    loaded, _ = VectorIndex.load(path)
    assert ids_of(loaded) == set(ids)


def test_file_ahead_of_sql_is_not_trusted(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    """A database restored from an older backup: the index file must not outrank SQL."""
    ids = add_chunks(sessions, coll_id, doc_id, 3)
    store = IndexStore(tmp_path, policy=policy)
    idx = current(store, sessions, coll_id)
    idx.seq += 100  # as if the file had seen changes this database never had
    idx.index.add_with_ids(unit_vectors(1), np.asarray([10_000], dtype=np.int64))
    idx.save(store.path(coll_id), {})
    fresh = IndexStore(tmp_path, policy=policy)
    assert ids_of(current(fresh, sessions, coll_id)) == set(ids)
    # The long-running process that holds the bad index in memory recovers as well.
    assert ids_of(current(store, sessions, coll_id)) == set(ids)


def test_generations_are_separate_indexes_and_drop_keeps_one(
    tmp_path: Path, policy: IndexPolicy, sessions: sessionmaker[Session], coll_id: int, doc_id: int
) -> None:
    first = add_chunks(sessions, coll_id, doc_id, 3)
    second = add_chunks(sessions, coll_id, doc_id, 2, generation=2)
    store = IndexStore(tmp_path, policy=policy)
    with sessions() as s:
        assert ids_of(store.current(s, coll_id, 1, DIM)) == set(first)
        assert ids_of(store.current(s, coll_id, 2, DIM)) == set(second)
        assert log_head(s, coll_id, 2) > log_head(s, coll_id, 1)
    assert store.checkpoint(coll_id, 1, {}) is False  # generation 1 was forgotten for 2
    assert store.checkpoint(coll_id, 2, {}) is True
    store.path(coll_id, 1).write_bytes(b"stale")
    assert store.drop(coll_id, keep=2) is True
    assert not store.path(coll_id, 1).exists() and store.path(coll_id, 2).exists()
    store.drop(coll_id)
    assert not list(tmp_path.glob("collection-*"))
