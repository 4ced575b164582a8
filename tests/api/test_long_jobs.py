"""Long jobs do not block short ones: size classes with aging, small uploads run between a
large one's batches, and per-document progress while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.container import build_container
from api.worker import Worker
from data.jobs import JobStatus, SizeClasses, claim_next
from data.models import Document, Job
from data.protocols import Embedder
from tests.conftest import make_settings

SENTENCE = "Harbour note {i}: berth {i} opens at {h} and closes at {c} for boats of class {k}."


def big_text(n: int) -> bytes:
    """Text that splits into about `n` distinct chunks of 16 tokens."""
    return "\n\n".join(
        SENTENCE.format(i=i, h=i % 24, c=(i + 7) % 24, k=i % 5) for i in range(n)
    ).encode()


@pytest.fixture
def small_first(tmp_path: Path, db_url: str, embedder: Embedder) -> Any:
    """A container where uploads over 10 kB are large and chunks are 16 tokens."""
    settings = make_settings(
        tmp_path / "home",
        db_url,
        worker={"lease_ttl_s": 30.0, "poll_interval_s": 0.05, "checkpoint_interval_s": 0.0,
                "small_job_mb": 0.01, "large_job_max_wait_s": 3600.0},
        ingest={"parse_timeout_s": 60.0, "chunk_tokens": 16, "chunk_overlap_tokens": 0},
    )  # fmt: skip
    container = build_container(settings, embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        yield container, client
    container.close()


def upload(client: TestClient, name: str, data: bytes) -> int:
    r = client.post("/v1/documents", files={"file": (name, data)})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def test_small_uploads_are_claimed_before_a_large_one_until_it_has_waited(
    small_first: Any,
) -> None:
    container, client = small_first
    big = upload(client, "big.txt", big_text(600))
    small = upload(client, "small.txt", b"Small file.")
    worker = Worker(container, holder="w")
    assert worker.acquire()
    with container.sessions() as s:
        job = claim_next(s, fence_holder="w", ttl_s=30, classes=worker.classes)
        assert job is not None and job.document_id == small
        # With only the large one left, small_only finds nothing; plain claiming takes it.
        only_small = claim_next(
            s, fence_holder="w", ttl_s=30, classes=worker.classes, small_only=True
        )
        assert only_small is None
        job.status = JobStatus.QUEUED.value  # back in the queue, beside the large one
        s.commit()
        aged = SizeClasses(small_bytes=worker.classes.small_bytes, max_wait_s=0.0)
        job = claim_next(s, fence_holder="w", ttl_s=30, classes=aged)
        assert job is not None and job.document_id == big  # it waited long enough: FIFO
        fifo = claim_next(s, fence_holder="w", ttl_s=30, classes=SizeClasses(small_bytes=0))
        assert fifo is not None and fifo.document_id == small


def test_small_uploads_are_indexed_between_the_batches_of_a_large_one(
    small_first: Any,
) -> None:
    container, client = small_first
    big = upload(client, "big.txt", big_text(350))
    seen: dict[str, Any] = {"batches": 0}
    smalls: list[int] = []

    def on_step(step: str) -> None:
        if step != "embed_batch":
            return
        with container.sessions() as s:
            running = s.scalars(select(Document.id).where(Document.status == "processing")).all()
        if running != [big]:
            return  # a small one's batch, run meanwhile
        seen["batches"] += 1
        doc = client.get(f"/v1/documents/{big}").json()
        seen.setdefault("progress", []).append(doc["progress"])
        if seen["batches"] == 1:  # the large one is running: now small files arrive
            for i in range(3):
                smalls.append(upload(client, f"s{i}.txt", f"Small file {i}.".encode()))
        elif seen["batches"] == 2:
            states = [client.get(f"/v1/documents/{d}").json()["status"] for d in smalls]
            seen["smalls_at_batch_2"] = states
            seen["job"] = client.get(f"/v1/jobs/{doc['progress']['job_id']}").json()

    Worker(container, holder="w", on_step=on_step).run_until_idle()
    assert seen["smalls_at_batch_2"] == ["indexed"] * 3  # before the large one's 2nd batch
    first, second = seen["progress"][0], seen["progress"][1]
    assert first["job_status"] == "running" and first["stage"] == "embedding"
    assert first["chunks_embedded"] == 0 and first["chunks_to_embed"] > 256
    assert first["chunks_total"] >= first["chunks_to_embed"]
    assert second["chunks_embedded"] == 256  # saved after each batch, while it runs
    assert seen["job"]["status"] == "running" and seen["job"]["progress"]["chunks_embedded"] == 256
    with container.sessions() as s:
        docs = {d.id: d for d in s.scalars(select(Document))}
        assert docs[big].status == "indexed"
        assert all(docs[d].indexed_at < docs[big].indexed_at for d in smalls)  # type: ignore[operator]
        job = s.scalar(select(Job).where(Job.document_id == big))
        assert job is not None and job.progress["stage"] == "indexed"
    final = client.get(f"/v1/documents/{big}").json()
    assert final["progress"] is None and final["chunk_count"] == first["chunks_total"]


def test_without_size_classes_small_uploads_wait(small_first: Any, tmp_path: Path) -> None:
    container, client = small_first
    container.settings.worker.small_job_mb = 0.0  # first come, first served
    big = upload(client, "big.txt", big_text(100))
    smalls: list[int] = []

    def on_step(step: str) -> None:
        if step == "embed_batch" and not smalls:
            smalls.append(upload(client, "s.txt", b"Small file."))

    Worker(container, holder="w", on_step=on_step).run_until_idle()
    with container.sessions() as s:
        big_doc, small_doc = s.get(Document, big), s.get(Document, smalls[0])
        assert big_doc is not None and small_doc is not None
        assert small_doc.indexed_at > big_doc.indexed_at  # type: ignore[operator]
