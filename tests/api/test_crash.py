"""kill -9 the worker at each failpoint, restart it, and find SQL and FAISS in agreement."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.container import Container
from api.settings import Settings
from api.worker import Worker
from data.models import Chunk, Collection, Document, Job
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
    return set(idx.contents()[0].tolist())


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


def _source_env_worker(settings: Settings, failpoint: str | None) -> subprocess.Popen[bytes]:
    os.environ["GROUNDED_WORKER__RETIRE_AFTER_S"] = "0"  # purge swapped generations at once
    try:
        return start_worker(settings, failpoint)
    finally:
        os.environ.pop("GROUNDED_WORKER__RETIRE_AFTER_S", None)


def _job_done(container: Container, job_id: int) -> bool:
    with container.sessions() as s:
        job = s.get(Job, job_id)
        return job is not None and job.status in {"succeeded", "failed"}


def _assert_consistent(container: Container) -> set[int]:
    """No duplicate chunks, counts agree, and the index file holds exactly the live rows."""
    with container.sessions() as s:
        coll = s.scalar(select(Collection).where(Collection.name == "default"))
        assert coll is not None
        gen = coll.generation
        rows = s.execute(
            select(Chunk.id, Chunk.document_id, Chunk.ordinal).where(Chunk.generation == gen)
        ).all()
        assert len({(r.document_id, r.ordinal) for r in rows}) == len(rows)
        counts = dict(s.execute(select(Document.id, Document.chunk_count)).all())
        assert sum(counts.values()) == len(rows)
        path = container.indexes.path(coll.id, gen)
        wait_until(lambda: read_stamp(path) == log_head(s, coll.id, gen))
    assert file_ids(path) == {r.id for r in rows}
    return {r.id for r in rows}


@pytest.mark.parametrize(
    "failpoint",
    ["reindex_after_scan", "after_parse", "before_sql_commit", "after_sql_commit"],
)
def test_reindex_killed_at_each_failpoint_resumes_on_restart(
    failpoint: str, client: TestClient, container: Container, run_jobs: Worker
) -> None:
    folder = container.settings.source_root_paths[0] / "share"
    folder.mkdir()
    for name, text in [
        ("a.txt", "Apples are red."),
        ("b.txt", "Bananas are yellow."),
        ("c.txt", "Cherries are dark."),
    ]:
        (folder / name).write_text(text + "\n")
    client.post("/v1/collections/default/sources", json={"path": str(folder)})
    run_jobs.run_until_idle()
    (folder / "a.txt").rename(folder / "apples.txt")
    (folder / "b.txt").write_text("Bananas are yellow. Blueberries are blue.\n")
    os.utime(folder / "b.txt", ns=(0, 10**18))
    (folder / "c.txt").unlink()
    (folder / "d.txt").write_text("Dates are sweet and brown.\n")
    job_id = client.post("/v1/jobs", json={"type": "reindex"}).json()["id"]

    crashed = _source_env_worker(container.settings, failpoint)
    assert crashed.wait(timeout=120) == -signal.SIGKILL, crashed.stderr.read().decode()[-2000:]
    assert not _job_done(container, job_id)
    worker = _source_env_worker(container.settings, None)
    try:
        wait_until(lambda: _job_done(container, job_id))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    got = client.get(f"/v1/jobs/{job_id}").json()
    assert got["status"] == "succeeded" and got["attempts"] == 2, got
    docs = {d["filename"]: d["status"] for d in client.get("/v1/documents").json()["items"]}
    assert docs == {f"share/{n}": "indexed" for n in ("apples.txt", "b.txt", "d.txt")}
    _assert_consistent(container)
    hits = client.post("/v1/search", json={"query": "blue berries", "top_k": 1}).json()["hits"]
    assert hits[0]["filename"] == "share/b.txt" and "Blueberries" in hits[0]["text"]


@pytest.mark.parametrize("failpoint", ["rebuild_after_doc", "rebuild_after_swap"])
def test_rebuild_killed_mid_way_completes_on_restart(
    failpoint: str, client: TestClient, container: Container, run_jobs: Worker
) -> None:
    for name, text in [
        ("a.txt", b"Apples are red.\n"),
        ("b.txt", b"Bananas are yellow.\n"),
        ("c.txt", b"Cherries are dark.\n"),
    ]:
        client.post("/v1/documents", files={"file": (name, text)})
    run_jobs.run_until_idle()
    job_id = client.post(
        "/v1/collections/default/rebuild", json={"embedding_model": "default"}
    ).json()["id"]
    crashed = _source_env_worker(container.settings, failpoint)
    assert crashed.wait(timeout=120) == -signal.SIGKILL, crashed.stderr.read().decode()[-2000:]
    worker = _source_env_worker(container.settings, None)
    try:
        wait_until(lambda: _job_done(container, job_id))
        with container.sessions() as s:  # the retired generation is purged when idle
            wait_until(lambda: not s.scalar(select(func.count()).where(Chunk.generation == 1)))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    got = client.get(f"/v1/jobs/{job_id}").json()
    assert got["status"] == "succeeded", got
    assert client.get("/v1/collections/default").json()["generation"] == 2
    ids = _assert_consistent(container)
    assert len(ids) == 3
    hits = client.post("/v1/search", json={"query": "yellow fruit", "top_k": 1}).json()["hits"]
    assert hits[0]["filename"] == "b.txt"
