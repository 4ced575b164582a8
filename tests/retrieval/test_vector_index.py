"""VectorIndex on real FAISS: idempotent apply, search edges, atomic save/load, copy."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import faiss
import numpy as np
import pytest

from retrieval.vector_index import VectorIndex, read_stamp

DIM = 8
NONE = np.zeros(0, dtype=np.int64)


def unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids_of(idx: VectorIndex) -> list[int]:
    return sorted(faiss.vector_to_array(idx.index.id_map).tolist())


def filled(ids: list[int], seed: int = 0, seq: int = 1) -> tuple[VectorIndex, np.ndarray]:
    idx = VectorIndex.empty(DIM)
    vecs = unit(len(ids), seed)
    idx.apply(np.asarray(ids, dtype=np.int64), vecs, NONE, seq)
    return idx, vecs


def test_apply_twice_is_idempotent() -> None:
    idx, vecs = filled([10, 11, 12])
    first = idx.search(vecs, 3)
    idx.apply(np.asarray([10, 11, 12]), vecs, NONE, 1)
    assert idx.ntotal == 3 and ids_of(idx) == [10, 11, 12]
    again = idx.search(vecs, 3)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_allclose(first[0], again[0])


def test_apply_readds_an_id_with_its_new_vector() -> None:
    idx, vecs = filled([1, 2])
    new = unit(1, seed=9)
    idx.apply(np.asarray([1]), new, NONE, 2)
    assert idx.ntotal == 2
    scores, ids = idx.search(new, 1)
    assert ids[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_apply_removes_and_seq_never_goes_back() -> None:
    idx, vecs = filled([1, 2, 3], seq=5)
    idx.apply(NONE, np.zeros((0, DIM), np.float32), np.asarray([2, 99]), 4)
    assert ids_of(idx) == [1, 3]
    assert idx.seq == 5
    _, ids = idx.search(vecs[1:2], 3)
    assert 2 not in ids[0].tolist()


def test_search_on_empty_index_returns_empty_arrays() -> None:
    scores, ids = VectorIndex.empty(DIM).search(unit(2), 5)
    assert scores.shape == (2, 0) and ids.shape == (2, 0)
    assert scores.dtype == np.float32 and ids.dtype == np.int64


def test_k_larger_than_ntotal_returns_only_what_exists() -> None:
    idx, vecs = filled([7, 8])
    scores, ids = idx.search(vecs[:1], 50)
    assert ids.shape == (1, 2)
    assert sorted(ids[0].tolist()) == [7, 8]
    assert ids[0, 0] == 7 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_save_load_round_trip(tmp_path: Path) -> None:
    idx, vecs = filled([3, 5, 8, 13], seq=42)
    path = tmp_path / "sub" / "c.faiss"
    idx.save(path, {"collection_id": 1, "model_id": "m"})
    loaded, meta = VectorIndex.load(path)
    assert ids_of(loaded) == [3, 5, 8, 13]
    assert loaded.seq == 42 and loaded.dim == DIM
    assert meta == {"collection_id": 1, "model_id": "m", "seq": 42, "dim": DIM}
    assert read_stamp(path) == 42
    a, b = idx.search(vecs, 4), loaded.search(vecs, 4)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])


def test_read_stamp_missing_or_garbage_is_minus_one(tmp_path: Path) -> None:
    assert read_stamp(tmp_path / "absent.faiss") == -1
    garbage = tmp_path / "garbage.faiss"
    garbage.write_bytes(b"not an index at all, just bytes")
    assert read_stamp(garbage) == -1
    truncated = tmp_path / "truncated.faiss"
    truncated.write_bytes(b'GRNDIDX1\xff\x00\x00\x00{"se')
    assert read_stamp(truncated) == -1
    assert read_stamp(tmp_path) == -1  # a directory is unreadable as a file


def test_load_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "x.faiss"
    path.write_bytes(b"something else entirely")
    with pytest.raises(ValueError, match="not a Grounded index"):
        VectorIndex.load(path)


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    idx, _ = filled([1, 2])
    path = tmp_path / "c.faiss"
    idx.save(path, {})
    idx.apply(np.asarray([3]), unit(1, 3), NONE, 2)
    idx.save(path, {})
    assert [p.name for p in tmp_path.iterdir()] == ["c.faiss"]
    assert read_stamp(path) == 2


def test_failed_save_keeps_the_old_file(tmp_path: Path) -> None:
    old, _ = filled([1, 2], seq=3)
    path = tmp_path / "c.faiss"
    old.save(path, {"v": "old"})
    before = path.read_bytes()
    new, _ = filled([1, 2, 3, 4], seq=9)
    with pytest.raises(TypeError):
        new.save(path, {"bad": object()})  # not JSON-serializable
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.faiss"]


def test_write_failure_midway_removes_temp_and_keeps_the_old_file(tmp_path: Path) -> None:
    old, _ = filled([1], seq=1)
    path = tmp_path / "c.faiss"
    old.save(path, {})
    before = path.read_bytes()
    big, _ = filled(list(range(1000)), seq=2)  # ~32 KB: the write must fail part-way
    # A file-size limit makes write() fail with EFBIG after the temp file exists.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 4096, hard))
    try:
        with pytest.raises(OSError):
            big.save(path, {})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.faiss"]


def test_failed_replace_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "c.faiss"
    (target / "occupied").mkdir(parents=True)  # os.replace onto a non-empty dir fails
    idx, _ = filled([1])
    with pytest.raises(OSError):
        idx.save(target, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.faiss"]
    assert target.is_dir()


def test_copy_is_independent_of_the_original() -> None:
    idx, _ = filled([1, 2, 3], seq=4)
    twin = idx.copy()
    twin.apply(np.asarray([9]), unit(1, 9), np.asarray([1]), 8)
    assert ids_of(idx) == [1, 2, 3] and idx.seq == 4
    assert ids_of(twin) == [2, 3, 9] and twin.seq == 8
    idx.apply(NONE, np.zeros((0, DIM), np.float32), np.asarray([2]), 5)
    assert ids_of(twin) == [2, 3, 9]
