"""kill -9 the worker at each failpoint, restart it, and find SQL and FAISS in agreement."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.container import Container
from api.settings import Settings
from api.worker import Worker
from data.models import Chunk, Collection, Document
from retrieval.index_store import log_head
from retrieval.vector_index import VectorIndex, read_stamp

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings: Settings, failpoint: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GROUNDED_HOME": str(settings.home),
        "GROUNDED_DATABASE_URL": settings.db_url,
        "GROUNDED_WORKER__LEASE_TTL_S": "2",
        "GROUNDED_WORKER__POLL_INTERVAL_S": "0.1",
        "GROUNDED_WORKER__CHECKPOINT_INTERVAL_S": "0",
    }
    env.pop("GROUNDED_FAILPOINT", None)
    if failpoint:
        env["GROUNDED_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(cond, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def file_ids(path: Path) -> set[int]:
    idx, _ = VectorIndex.load(path)
    return set(faiss.vector_to_array(idx.index.id_map).tolist())


@pytest.mark.parametrize(
    "failpoint", ["after_parse", "before_sql_commit", "after_sql_commit", "after_checkpoint"]
)
def test_kill_9_then_restart_agrees(
    failpoint: str, client: TestClient, container: Container, run_jobs: Worker
) -> None:
    settings = container.settings
    client.post("/v1/documents", files={"file": ("a.txt", b"Apples are red.\n")})
    run_jobs.run_until_idle()  # a checkpoint file now exists, covering a.txt
    for name, text in [("b.txt", b"Bananas are yellow.\n"), ("c.txt", b"Cherries are dark.\n")]:
        client.post("/v1/documents", files={"file": (name, text)})

    crashed = start_worker(settings, failpoint)
    assert crashed.wait(timeout=120) == -signal.SIGKILL, crashed.stderr.read().decode()[-2000:]
    with container.sessions() as s:
        coll = s.scalar(select(Collection).where(Collection.name == "default"))
        assert coll is not None
        path = container.indexes.path(coll.id, coll.generation)
        if failpoint == "after_sql_commit":
            # The crash window this test exists for: SQL has rows the file lacks.
            assert read_stamp(path) < log_head(s, coll.id, coll.generation)

    worker = start_worker(settings, None)
    try:

        def settled() -> bool:
            with container.sessions() as s:
                statuses = set(s.scalars(select(Document.status)))
                return statuses == {"indexed"} and read_stamp(path) == log_head(
                    s, coll.id, coll.generation
                )

        wait_until(settled)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    with container.sessions() as s:
        rows = s.execute(select(Chunk.id, Chunk.document_id, Chunk.ordinal)).all()
        chunk_ids = {r.id for r in rows}
        assert len({(r.document_id, r.ordinal) for r in rows}) == len(rows)  # no duplicates
        counts = {n: c for n, c in s.execute(select(Document.filename, Document.chunk_count))}
        assert set(counts) == {"a.txt", "b.txt", "c.txt"}
        assert sum(counts.values()) == len(rows)
        assert s.scalar(select(func.count()).select_from(Chunk)) == len(rows)
    # No vectors without rows, no rows without vectors — in the file and in a fresh reader.
    assert file_ids(path) == chunk_ids
    for query, name in [("yellow fruit", "b.txt"), ("dark fruit cherries", "c.txt")]:
        hits = client.post("/v1/search", json={"query": query, "top_k": 1}).json()["hits"]
        assert hits[0]["filename"] == name


def test_reader_replays_tail_that_no_file_covers(
    client: TestClient, container: Container, run_jobs: Worker
) -> None:
    """Even with no index file at all, search answers from SQL (the index is derived)."""
    client.post("/v1/documents", files={"file": ("a.txt", b"Owls hunt at night.\n")})
    run_jobs.run_until_idle()
    for p in container.indexes.directory.glob("*.faiss"):
        p.unlink()
    from retrieval.index_store import IndexStore

    container.indexes = IndexStore(container.indexes.directory)
    client.app.state.container = container  # type: ignore[attr-defined]
    hits = client.post("/v1/search", json={"query": "owls", "top_k": 1}).json()["hits"]
    assert hits and hits[0]["filename"] == "a.txt"
    assert np.isclose(hits[0]["score"], hits[0]["score"])
