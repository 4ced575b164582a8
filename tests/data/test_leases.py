"""The writer lease and the job queue in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from data.errors import LeaseLostError
from data.jobs import (
    JobStatus,
    JobType,
    claim_next,
    enqueue,
    finish,
    pending_for,
    recover_orphans,
)
from data.leases import WRITER, fence, release, try_acquire
from data.models import DEFAULT_COLLECTION, Collection, Document, Job, Lease
from data.types import DocumentStatus

TTL = 30.0


def lease(sessions: sessionmaker[Session]) -> Lease:
    with sessions() as s:
        row = s.get(Lease, WRITER)
        assert row is not None
        return row


def expire(sessions: sessionmaker[Session]) -> None:
    """Age the lease past its expiry without waiting for it."""
    with sessions() as s:
        s.execute(update(Lease).where(Lease.name == WRITER).values(expires_at=time.time() - 1))
        s.commit()


def acquire(sessions: sessionmaker[Session], holder: str) -> bool:
    with sessions() as s:
        return try_acquire(s, WRITER, holder, TTL)


# --- leases -----------------------------------------------------------------------------


def test_first_holder_wins_and_second_is_refused(sessions: sessionmaker[Session]) -> None:
    assert acquire(sessions, "A")
    assert not acquire(sessions, "B")
    row = lease(sessions)
    assert row.holder == "A" and row.expires_at > time.time() + TTL - 5


def test_holder_renews_its_own_lease(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert try_acquire(s, WRITER, "A", 1.0)
    short = lease(sessions).expires_at
    assert acquire(sessions, "A")
    assert lease(sessions).expires_at > short + TTL - 5


def test_expired_lease_is_taken_over(sessions: sessionmaker[Session]) -> None:
    assert acquire(sessions, "A")
    expire(sessions)
    assert acquire(sessions, "B")
    assert lease(sessions).holder == "B"
    assert not acquire(sessions, "A")


def test_tiny_ttl_expires_in_real_time(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert try_acquire(s, WRITER, "A", 0.2)
    assert not acquire(sessions, "B")
    time.sleep(0.3)
    assert acquire(sessions, "B")


def test_unknown_lease_name_is_never_acquired(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert not try_acquire(s, "no-such-lease", "A", TTL)


def test_fence_renews_for_the_holder(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert try_acquire(s, WRITER, "A", 1.0)
    with sessions() as s:
        fence(s, WRITER, "A", TTL)
        s.commit()
    assert lease(sessions).expires_at > time.time() + TTL - 5


def test_fence_refuses_a_deposed_holder_and_nothing_commits(
    sessions: sessionmaker[Session],
) -> None:
    assert acquire(sessions, "A")
    expire(sessions)
    assert acquire(sessions, "B")
    with sessions() as s:
        s.add(Collection(name="written-by-a"))  # A's work, staged before its fence
        s.flush()
        with pytest.raises(LeaseLostError, match="writer"):
            fence(s, WRITER, "A", TTL)
        s.rollback()
    with sessions() as s:
        assert s.scalar(select(Collection).where(Collection.name == "written-by-a")) is None
    assert lease(sessions).holder == "B"


def test_fence_refuses_an_expired_holder_even_if_nobody_took_over(
    sessions: sessionmaker[Session],
) -> None:
    assert acquire(sessions, "A")
    expire(sessions)
    with sessions() as s, pytest.raises(LeaseLostError):
        fence(s, WRITER, "A", TTL)


def test_release_lets_another_take_over_at_once(sessions: sessionmaker[Session]) -> None:
    assert acquire(sessions, "A")
    with sessions() as s:
        release(s, WRITER, "B")  # not B's to give away
    assert not acquire(sessions, "B")
    with sessions() as s:
        release(s, WRITER, "A")
    row = lease(sessions)
    assert row.holder is None and row.expires_at == 0.0
    assert acquire(sessions, "B")
    with sessions() as s, pytest.raises(LeaseLostError):
        fence(s, WRITER, "A", TTL)


# --- jobs -------------------------------------------------------------------------------


def make_doc(s: Session, name: str, status: DocumentStatus) -> Document:
    cid = s.scalar(select(Collection.id).where(Collection.name == DEFAULT_COLLECTION))
    assert cid is not None
    doc = Document(
        collection_id=cid,
        filename=name,
        content_hash="0" * 64,
        media_type="text/plain",
        size=1,
        status=status.value,
    )
    s.add(doc)
    s.flush()
    return doc


def add_job(s: Session, doc: Document, **payload: object) -> Job:
    job = enqueue(
        s,
        type=JobType.INGEST,
        collection_id=doc.collection_id,
        document_id=doc.id,
        payload=dict(payload),
    )
    s.commit()
    return job


def test_claim_next_takes_the_oldest_queued_and_counts_attempts(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        doc = make_doc(s, "a.txt", DocumentStatus.QUEUED)
        done = add_job(s, doc)
        done.status = JobStatus.SUCCEEDED.value
        first, second = add_job(s, doc), add_job(s, doc)
        s.commit()
        ids = (done.id, first.id, second.id)
    with sessions() as s:
        job = claim(s)
        assert job is not None and job.id == ids[1]
        assert job.attempts == 1 and job.started_at is not None
    with sessions() as s:
        assert s.get(Job, ids[1]).status == JobStatus.RUNNING.value  # type: ignore[union-attr]
        job = claim(s)
        assert job is not None and job.id == ids[2]
        assert claim(s) is None
        assert s.get(Job, ids[0]).attempts == 0  # type: ignore[union-attr]


def test_recover_orphans_requeues_running_work(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        busy = make_doc(s, "busy.txt", DocumentStatus.PROCESSING)
        ok = make_doc(s, "ok.txt", DocumentStatus.INDEXED)
        orphan = add_job(s, busy)
        finished = add_job(s, ok)
        finished.status = JobStatus.SUCCEEDED.value
        s.commit()
        ids = (busy.id, ok.id, orphan.id, finished.id)
    with sessions() as s:
        assert claim(s) is not None  # the orphan: running, attempt 1
    with sessions() as s:
        assert recover_orphans(s) == 1
    with sessions() as s:
        assert s.get(Document, ids[0]).status == DocumentStatus.QUEUED.value  # type: ignore[union-attr]
        assert s.get(Document, ids[1]).status == DocumentStatus.INDEXED.value  # type: ignore[union-attr]
        assert s.get(Job, ids[2]).status == JobStatus.QUEUED.value  # type: ignore[union-attr]
        assert s.get(Job, ids[3]).status == JobStatus.SUCCEEDED.value  # type: ignore[union-attr]
        again = claim(s)
        assert again is not None and again.id == ids[2] and again.attempts == 2
    with sessions() as s:
        assert recover_orphans(s) == 1
        assert recover_orphans(s) == 0


def test_finish_drops_the_password_from_the_stored_payload(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        doc = make_doc(s, "secret.pdf", DocumentStatus.QUEUED)
        ok = add_job(s, doc, format="pdf", password="hunter2")
        bad = add_job(s, doc, format="pdf", password="hunter2")
        finish(ok)
        finish(bad, error="boom")
        s.commit()
        ids = (ok.id, bad.id)
    with sessions() as s:
        ok_row, bad_row = s.get(Job, ids[0]), s.get(Job, ids[1])
        assert ok_row is not None and bad_row is not None
        assert ok_row.payload == {"format": "pdf"} and bad_row.payload == {"format": "pdf"}
        assert ok_row.status == JobStatus.SUCCEEDED.value and ok_row.error is None
        assert bad_row.status == JobStatus.FAILED.value and bad_row.error == "boom"
        assert ok_row.finished_at is not None


def test_pending_for_lists_documents_with_open_jobs(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        a = make_doc(s, "a.txt", DocumentStatus.QUEUED)
        b = make_doc(s, "b.txt", DocumentStatus.INDEXED)
        add_job(s, a)
        finish(add_job(s, b))
        s.commit()
        assert pending_for(s, [a.id, b.id]) == {a.id}
        assert pending_for(s, []) == set()


def claim(s: Session) -> Job | None:
    """claim_next as the writer-lease holder (claiming is fenced by the lease)."""
    assert try_acquire(s, WRITER, "claimer", 60)
    return claim_next(s, fence_holder="claimer", ttl_s=60)
