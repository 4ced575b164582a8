"""One document through the indexer: each distinct text embedded once, a cap on extracted
text, and a document deleted mid-way stops being processed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.container import Container, build_container
from api.worker import Worker
from data.models import Chunk, Document, IndexLog
from data.types import ChunkSpan
from ingest.blobs import BlobStore
from ingest.indexing import EMBED_STEP, DocumentIndexer
from ingest.writer import ProcessorConfig, Writer
from retrieval.embedder import Embedder, Kind
from tests.conftest import make_settings
from tests.helpers import CountingEmbedder, make_docx

PARAGRAPH = (
    "The quarterly safety review found no open issues in hall B, and every forklift "
    "driver holds a current certificate. The next review is due in the spring."
)


class FakeEmbedder:
    """A vector per text from its hash; records every call (unit tests only)."""

    model_id = "fake"
    dim = 8
    max_tokens = 128

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Hash-derived vectors."""
        self.calls.append(list(texts))
        return np.stack([vector_of(t) for t in texts])


def vector_of(text: str) -> np.ndarray:
    digest = hashlib.sha256(text.encode()).digest()[:8]
    return np.frombuffer(digest, dtype=np.uint8).astype(np.float32)


def spans_of(texts: list[str]) -> list[ChunkSpan]:
    return [ChunkSpan(i, 0, len(t), t, 1, None, None, None, None) for i, t in enumerate(texts)]


def test_each_distinct_text_is_embedded_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    w = Writer(sessions, BlobStore(tmp_path), None, ProcessorConfig(), "t")  # type: ignore[arg-type]
    fake = FakeEmbedder()
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha"] * 50
    vectors, embedded = DocumentIndexer(w).vectors(fake, spans_of(texts))  # type: ignore[arg-type]
    assert fake.calls == [["alpha", "beta", "gamma"]] and embedded == 3
    assert np.array_equal(vectors, np.stack([vector_of(t) for t in texts]))
    # More distinct texts than one step: several calls, each text still once, order kept.
    many = [f"text {i % (EMBED_STEP + 10)}" for i in range(3 * EMBED_STEP)]
    fake.calls.clear()
    vectors, embedded = DocumentIndexer(w).vectors(fake, spans_of(many))  # type: ignore[arg-type]
    assert [len(c) for c in fake.calls] == [EMBED_STEP, 10] and embedded == EMBED_STEP + 10
    assert np.array_equal(vectors, np.stack([vector_of(t) for t in many]))


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    """The real embedder, counting the passages it embeds."""
    return CountingEmbedder(embedder)


@contextmanager
def app_with(
    tmp_path: Path, db_url: str, counting: CountingEmbedder, **ingest: object
) -> Iterator[tuple[TestClient, Container]]:
    # A lease long enough for a step of real embedding on a busy machine (nothing renews
    # it inside one job under run_until_idle).
    worker = {"lease_ttl_s": 120.0, "poll_interval_s": 0.05, "checkpoint_interval_s": 0.0}
    ingest = {"parse_timeout_s": 60.0, **ingest}
    settings = make_settings(tmp_path / "h", db_url, ingest=ingest, worker=worker)
    container = build_container(settings, embedder=counting)  # type: ignore[arg-type]
    with TestClient(create_app(container=container)) as client:
        yield client, container
    container.close()


@pytest.fixture
def app(
    tmp_path: Path, db_url: str, counting: CountingEmbedder
) -> Iterator[tuple[TestClient, Container]]:
    """An app on the counting embedder, with default ingest settings."""
    with app_with(tmp_path, db_url, counting) as pair:
        yield pair


def upload(client: TestClient, name: str, data: bytes) -> int:
    r = client.post("/v1/documents", files={"file": (name, data)})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def test_repeated_text_docx_embeds_each_distinct_chunk_once(
    app: tuple[TestClient, Container], counting: CountingEmbedder
) -> None:
    client, container = app
    doc_id = upload(client, "repeated.docx", make_docx([("", PARAGRAPH)] * 1000))
    Worker(container, holder="w").run_until_idle()
    assert client.get(f"/v1/documents/{doc_id}").json()["status"] == "indexed"
    with container.sessions() as s:
        total = s.scalar(select(func.count()).select_from(Chunk))
        distinct = s.scalar(select(func.count(func.distinct(Chunk.text_hash))))
    assert total is not None and distinct is not None
    assert total >= 100 and distinct <= 5
    assert counting.passages == distinct
    hits = client.post("/v1/search", json={"query": "forklift certificate"}).json()["hits"]
    assert hits and hits[0]["document_id"] == doc_id


def test_text_over_the_cap_fails_too_large(
    tmp_path: Path, db_url: str, counting: CountingEmbedder
) -> None:
    bomb = make_docx([("", PARAGRAPH)] * 2_000)  # ~34 kB that expands to ~330k characters
    with app_with(tmp_path, db_url, counting, max_chars=100_000) as (client, container):
        assert len(bomb) < 50_000
        big = upload(client, "bomb.docx", bomb)
        small = upload(client, "small.txt", b"The canteen opens at eight.\n")
        Worker(container, holder="w").run_until_idle()
        got = client.get(f"/v1/documents/{big}").json()
        assert got["status"] == "failed" and got["error_code"] == "too_large"
        assert "100,000" in got["error"]
        assert client.get(f"/v1/documents/{small}").json()["status"] == "indexed"
        with container.sessions() as s:
            assert set(s.scalars(select(Chunk.document_id))) == {small}
        assert counting.passages == 1


@pytest.mark.parametrize(("step", "embedded"), [("after_parse", 0), ("embed_batch", EMBED_STEP)])
def test_deleting_a_document_being_processed_stops_it(
    tmp_path: Path, db_url: str, counting: CountingEmbedder, step: str, embedded: int
) -> None:
    # Short chunks: one sentence each, so the document needs two embedding steps.
    sentences = [f"Item {i} of the inventory is shelf {i * 7} in row {i % 13}." for i in range(300)]
    data = "\n\n".join(sentences).encode()
    with app_with(tmp_path, db_url, counting, chunk_tokens=16) as (client, container):
        doomed = upload(client, "inventory.txt", data)
        after = upload(client, "next.txt", b"The canteen opens at eight.\n")
        seen: list[str] = []

        def on_step(name: str) -> None:
            seen.append(name)
            if name == step and seen.count(step) == 1:
                assert client.delete(f"/v1/documents/{doomed}").status_code == 202

        Worker(container, holder="w", on_step=on_step).run_until_idle()
        assert seen.count(step) >= 1
        # Nothing of it was embedded after the delete, nothing of it remains...
        assert counting.passages == embedded + 1
        assert client.get(f"/v1/documents/{doomed}").status_code == 404
        with container.sessions() as s:
            assert s.get(Document, doomed) is None
            assert set(s.scalars(select(Chunk.document_id))) == {after}
            adds = s.scalar(select(func.count()).select_from(IndexLog).where(IndexLog.op == 1))
            assert adds == 1
        assert not container.blobs.path_for(hashlib.sha256(data).hexdigest()).exists()
        # ...and the worker went on to the next document.
        assert client.get(f"/v1/documents/{after}").json()["status"] == "indexed"
