"""The single writer: lease election, fencing of a deposed worker, giving up on crashing jobs."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.container import Container
from api.worker import Worker
from data.errors import LeaseLostError
from data.jobs import JobStatus, claim_next
from data.leases import WRITER
from data.models import Chunk, Document, IndexLog, Job, Lease
from data.types import DocumentStatus, ErrorCode


def upload(client: TestClient, name: str = "a.txt", text: bytes = b"Apples are red.\n") -> int:
    r = client.post("/v1/documents", files={"file": (name, text)})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def job_of(container: Container, doc_id: int) -> Job:
    with container.sessions() as s:
        job = s.scalar(select(Job).where(Job.document_id == doc_id))
        assert job is not None
        return job


def holder(container: Container) -> str | None:
    with container.sessions() as s:
        return s.scalar(select(Lease.holder).where(Lease.name == WRITER))


def set_lease(container: Container, who: str | None, expires_at: float) -> None:
    with container.sessions() as s:
        s.execute(
            update(Lease).where(Lease.name == WRITER).values(holder=who, expires_at=expires_at)
        )
        s.commit()


def count(container: Container, model: type) -> int:
    with container.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_only_one_worker_acquires_and_standby_takes_over_on_release(
    container: Container,
) -> None:
    first, standby = Worker(container, holder="first"), Worker(container, holder="standby")
    assert first.acquire()
    assert not standby.acquire()
    assert first.acquire()  # renewing is fine
    assert holder(container) == "first"
    first.release()
    assert holder(container) is None
    assert standby.acquire()
    assert holder(container) == "standby"
    assert not first.acquire()


def test_new_leader_requeues_the_dead_leaders_running_job(
    client: TestClient, container: Container
) -> None:
    doc_id = upload(client)
    dead, heir = Worker(container, holder="dead"), Worker(container, holder="heir")
    assert dead.acquire()
    with container.sessions() as s:
        assert claim_next(s, fence_holder="dead", ttl_s=60) is not None  # then it dies
    set_lease(container, "dead", time.time() - 1)
    assert heir.acquire()
    assert job_of(container, doc_id).status == JobStatus.QUEUED.value
    assert heir.run_once()
    assert job_of(container, doc_id).status == JobStatus.SUCCEEDED.value
    with container.sessions() as s:
        assert s.get(Document, doc_id).status == DocumentStatus.INDEXED.value  # type: ignore[union-attr]


def test_deposed_worker_never_commits_chunks(client: TestClient, container: Container) -> None:
    doc_id = upload(client)
    job_id = job_of(container, doc_id).id
    worker = Worker(container, holder="deposed")
    assert worker.acquire()
    set_lease(container, "usurper", time.time() + 60)
    with pytest.raises(LeaseLostError):
        worker.processor.run(job_id)
    assert count(container, Chunk) == 0
    assert count(container, IndexLog) == 0
    assert job_of(container, doc_id).status != JobStatus.SUCCEEDED.value
    with container.sessions() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None and doc.status != DocumentStatus.INDEXED.value
        assert doc.chunk_count == 0
    assert holder(container) == "usurper"


def test_job_that_keeps_crashing_is_given_up(client: TestClient, container: Container) -> None:
    doc_id = upload(client)
    worker = Worker(container, holder="w")
    limit = container.settings.worker.max_attempts
    with container.sessions() as s:  # as if `limit` earlier attempts had killed the worker
        s.execute(
            update(Job)
            .where(Job.document_id == doc_id)
            .values(status=JobStatus.QUEUED.value, attempts=limit)
        )
        s.commit()
    assert worker.acquire()
    assert worker.run_once()
    job = job_of(container, doc_id)
    assert job.status == JobStatus.FAILED.value and job.attempts == limit + 1
    assert job.error is not None and str(limit) in job.error
    with container.sessions() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None
        assert doc.status == DocumentStatus.FAILED.value
        assert doc.error_code == ErrorCode.INTERNAL.value
    assert count(container, Chunk) == 0
    assert not worker.run_once()  # the queue is empty: it is not retried again


def test_last_allowed_attempt_still_runs(client: TestClient, container: Container) -> None:
    doc_id = upload(client)
    worker = Worker(container, holder="w")
    limit = container.settings.worker.max_attempts
    with container.sessions() as s:
        s.execute(update(Job).where(Job.document_id == doc_id).values(attempts=limit - 1))
        s.commit()
    assert worker.acquire()
    assert worker.run_once()
    job = job_of(container, doc_id)
    assert job.status == JobStatus.SUCCEEDED.value and job.attempts == limit
    assert count(container, Chunk) >= 1


def test_job_claimed_by_a_deposed_worker_is_still_done_by_the_leader(
    client: TestClient, container: Container
) -> None:
    doc_id = upload(client)
    old, leader = Worker(container, holder="old"), Worker(container, holder="leader")
    assert old.acquire()
    set_lease(container, "old", time.time() - 1)  # old stalls; its lease runs out
    assert leader.acquire()
    with pytest.raises(LeaseLostError):
        old.run_once()  # old wakes up and carries on with its loop body
    while leader.run_once():
        pass
    assert job_of(container, doc_id).status == JobStatus.SUCCEEDED.value


def test_two_workers_released_at_once_run_the_job_exactly_once(
    client: TestClient, container: Container
) -> None:
    """A barrier lines both up on the same instant; the lease in SQL lets only one through."""
    import threading

    doc_id = upload(client)
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def contender(name: str) -> None:
        w = Worker(container, holder=name)
        barrier.wait()
        won = w.acquire()
        ran = False
        if won:
            ran = w.run_once()
            w.release()
        else:
            with container.sessions() as s, pytest.raises(LeaseLostError):
                claim_next(s, fence_holder=name, ttl_s=5)  # not the writer: can't claim
        outcome[name] = (won, ran)

    threads = [threading.Thread(target=contender, args=(n,)) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcome.values()) == [(False, False), (True, True)], outcome
    job = job_of(container, doc_id)
    assert job.status == JobStatus.SUCCEEDED.value and job.attempts == 1
    with container.sessions() as s:
        ordinals = s.scalars(select(Chunk.ordinal).where(Chunk.document_id == doc_id)).all()
    assert len(ordinals) == len(set(ordinals)) == 1
