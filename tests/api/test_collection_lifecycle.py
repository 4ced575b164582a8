"""Deleting a whole collection, and rebuilding one with another model while searches run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import failpoints
from api.container import Container
from api.worker import Worker
from data.models import Chunk, Collection, Document, IndexLog, Source
from retrieval.search import search
from tests.helpers import save_tiny_bert

CANTEEN = b"# Canteen\n\nOn Fridays the canteen serves fish and chips.\n"
PARKING = b"# Parking\n\nVisitors park in the north lot next to the loading bay.\n"


def upload(client: TestClient, name: str, data: bytes, collection: str = "default") -> dict:
    r = client.post("/v1/documents", files={"file": (name, data)}, data={"collection": collection})
    assert r.status_code == 202, r.text
    return r.json()


def count(container: Container, model: type, **where: object) -> int:
    with container.sessions() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.scalar(q) or 0)


def test_delete_collection_removes_everything_it_alone_owns(
    client: TestClient,
    container: Container,
    run_jobs: Worker,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    assert client.post("/v1/collections", json={"name": "hr"}).status_code == 201
    folder = settings.source_root_paths[0] / "hr-share"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nAnnual leave is 25 days.\n")
    upload(client, "canteen.md", CANTEEN, "hr")
    upload(client, "parking.md", PARKING, "hr")
    shared = upload(client, "canteen-copy.md", CANTEEN, "default")  # same bytes elsewhere
    client.post("/v1/collections/hr/sources", json={"path": str(folder)})
    run_jobs.run_until_idle()
    with container.sessions() as s:
        hr = s.scalar(select(Collection).where(Collection.name == "hr"))
        assert hr is not None
        hr_id = hr.id
    assert count(container, Document, collection_id=hr_id) == 3
    parking_blob = container.blobs.path_for(
        client.get("/v1/documents", params={"collection": "hr"}).json()["items"][1]["content_hash"]
    )
    assert parking_blob.exists() and list(container.indexes.directory.glob(f"collection-{hr_id}-*"))

    assert client.delete("/v1/collections/default").status_code == 409
    r = client.delete("/v1/collections/hr")
    assert r.status_code == 202 and r.json()["type"] == "delete_collection"
    # Hidden at once: read-only and unsearchable while the writer empties it.
    assert client.get("/v1/collections/hr").json()["status"] == "deleting"
    assert (
        client.post("/v1/search", json={"query": "fish", "collections": ["hr"]}).status_code == 409
    )
    assert upload_status(client, "x.md", b"x", "hr") == 409
    run_jobs.run_until_idle()

    assert client.get("/v1/collections/hr").status_code == 404
    for model in (Document, Chunk, IndexLog, Source):
        assert count(container, model, collection_id=hr_id) == 0, model
    assert not parking_blob.exists()
    # The copy in the default collection keeps its original, chunks and search hits.
    assert container.blobs.path_for(shared["content_hash"]).exists()
    hits = client.post("/v1/search", json={"query": "what is served on fridays"}).json()["hits"]
    assert hits[0]["filename"] == "canteen-copy.md"
    assert not list(container.indexes.directory.glob(f"collection-{hr_id}-*"))
    assert client.post("/v1/collections", json={"name": "hr"}).status_code == 201


def upload_status(client: TestClient, name: str, data: bytes, collection: str) -> int:
    r = client.post("/v1/documents", files={"file": (name, data)}, data={"collection": collection})
    return r.status_code


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different (random, 32-dim) sentence-transformers model, built offline for the test."""
    from sentence_transformers import SentenceTransformer, models

    dest = tmp_path_factory.mktemp("models")
    save_tiny_bert(dest / "hf")
    word = models.Transformer(str(dest / "hf"), max_seq_length=64)
    st = SentenceTransformer(modules=[word, models.Pooling(32, "mean")], device="cpu")
    st.save(str(dest / "tiny-st"))
    return dest / "tiny-st"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rebuild_refuses_model_folders_outside_the_roots_alike(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    """The answer must not tell a caller whether a directory exists outside the roots."""
    upload(client, "canteen.md", CANTEEN)
    (tmp_path / "outside").mkdir()
    root = container.settings.home / "models"
    (root / "mine").mkdir(parents=True)
    answers = []
    for path in [
        tmp_path / "outside",  # exists
        tmp_path / "nowhere",  # does not
        root / "mine" / ".." / ".." / "..",  # exists, and only looks inside
        Path("/etc"),
    ]:
        r = client.post("/v1/collections/default/rebuild", json={"embedding_model": str(path)})
        answers.append((r.status_code, r.json()))
    assert answers[0][0] == 403 and answers[0][1]["error"] == "forbidden"
    assert all(a == answers[0] for a in answers), answers
    r = client.post("/v1/collections/default/rebuild", json={"embedding_model": "mine"})
    assert r.json() == answers[0][1]  # relative: refused the same way
    # Inside the default root (<home>/models) a folder is accepted.
    r = client.post("/v1/collections/default/rebuild", json={"embedding_model": str(root / "mine")})
    assert r.status_code == 202, r.text


def test_rebuild_with_another_model_while_searches_run(
    client: TestClient, container: Container, tiny_model: Path
) -> None:
    upload(client, "canteen.md", CANTEEN)
    upload(client, "parking.md", PARKING)
    Worker(container, holder="w").run_until_idle()
    old_chunks = set(_chunk_ids(container))
    r = client.post("/v1/collections/default/rebuild", json={"embedding_model": "models/x"})
    assert r.status_code == 403
    container.settings.model_roots = str(tiny_model.parent)
    r = client.post("/v1/collections/default/rebuild", json={"embedding_model": str(tiny_model)})
    assert r.status_code == 202
    again = client.post("/v1/collections/default/rebuild", json={"embedding_model": "default"})
    assert again.status_code == 409

    paused, resume = threading.Event(), threading.Event()

    def on_step(step: str) -> None:
        failpoints.hit(step)
        if step == "rebuild_after_doc" and not paused.is_set():
            paused.set()
            assert resume.wait(120)

    worker = Worker(container, holder="w", on_step=on_step)
    runner = threading.Thread(target=worker.run_until_idle)
    runner.start()
    assert paused.wait(120)
    # Half-way: one document is in the new generation, searches still use the old one.
    coll = client.get("/v1/collections/default").json()
    assert coll["generation"] == 1 and coll["embedder_dim"] == 384
    hits = client.post("/v1/search", json={"query": "what is served on fridays"}).json()["hits"]
    assert hits[0]["filename"] == "canteen.md" and hits[0]["chunk_id"] in old_chunks

    failures: list[str] = []
    seen: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            with container.sessions() as s:
                colls = s.scalars(select(Collection).where(Collection.name == "default")).all()
                found = search(s, container.indexes, container.embedders, "canteen", colls, 2)
            if len(found) != 2:
                failures.append(f"{len(found)} hits")
            seen.append(colls[0].generation)

    readers = [threading.Thread(target=searcher) for _ in range(2)]
    for t in readers:
        t.start()
    resume.set()
    runner.join(120)
    stop.set()
    for t in readers:
        t.join(30)
    assert not failures and seen, failures[:5]

    coll = client.get("/v1/collections/default").json()
    assert coll["generation"] == 2 and coll["embedder_dim"] == 32
    assert coll["embedder_model_id"] == "tiny-st" and coll["embedder_path"] == str(tiny_model)
    # The old generation stays for searches that began before the swap, then goes.
    assert old_chunks < set(_chunk_ids(container))
    assert worker.purge_retired() == 0
    later = datetime.now(UTC) + timedelta(seconds=container.settings.worker.retire_after_s + 1)
    worker.acquire()
    assert worker.purge_retired(later) == len(old_chunks)
    worker.release()
    new_chunks = set(_chunk_ids(container))
    assert new_chunks and not new_chunks & old_chunks
    # A chunk's own text is its nearest neighbour under the new model.
    with container.sessions() as s:
        text = s.scalar(select(Chunk.text).where(Chunk.id == min(new_chunks)))
    hits = client.post("/v1/search", json={"query": text}).json()["hits"]
    assert hits[0]["chunk_id"] == min(new_chunks) and hits[0]["score"] > 0.99
    # New uploads are embedded with the collection's new model.
    upload(client, "new.md", b"# New\n\nThe gym opens at seven.\n")
    Worker(container, holder="w").run_until_idle()
    assert client.get("/v1/documents").json()["items"][-1]["status"] == "indexed"
    files = sorted(p.name for p in container.indexes.directory.glob("collection-*"))
    assert files == ["collection-1-g2.faiss"]


def _chunk_ids(container: Container) -> list[int]:
    with container.sessions() as s:
        return list(s.scalars(select(Chunk.id)))
