"""The durable job queue in SQL; only the lease holder claims jobs."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from data.leases import WRITER, fence
from data.models import Document, Job, utcnow
from data.types import DocumentStatus


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobType(StrEnum):
    """What a job does."""

    INGEST = "ingest"
    DELETE = "delete"
    REINDEX = "reindex"  # re-sync a collection's watched folders
    REBUILD = "rebuild"  # re-chunk and re-embed a collection with another model
    DELETE_COLLECTION = "delete_collection"


def enqueue(
    session: Session,
    *,
    type: JobType,
    collection_id: int,
    document_id: int | None = None,
    source_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Job:
    """Add a job in the caller's transaction."""
    job = Job(
        type=type.value,
        status=JobStatus.QUEUED.value,
        collection_id=collection_id,
        document_id=document_id,
        source_id=source_id,
        payload=payload or {},
        progress={},
    )
    session.add(job)
    return job


def claim_next(session: Session, *, fence_holder: str, ttl_s: float) -> Job | None:
    """Mark the oldest queued job running and return it; only the writer-lease holder can."""
    fence(session, WRITER, fence_holder, ttl_s)
    job = session.scalars(
        select(Job).where(Job.status == JobStatus.QUEUED.value).order_by(Job.id).limit(1)
    ).first()
    if job is None:
        session.commit()
        return None
    job.status = JobStatus.RUNNING.value
    job.attempts += 1
    job.started_at = utcnow()
    job.worker = fence_holder
    session.commit()
    return job


def recover_orphans(session: Session) -> int:
    """Requeue jobs a dead writer left running; called right after taking the lease."""
    res: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Job)
        .where(Job.status == JobStatus.RUNNING.value)
        .values(status=JobStatus.QUEUED.value)
    )
    session.execute(
        update(Document)
        .where(Document.status == DocumentStatus.PROCESSING.value)
        .values(status=DocumentStatus.QUEUED.value)
    )
    session.commit()
    return int(res.rowcount or 0)


def finish(job: Job, *, error: str | None = None) -> None:
    """Close a job in the caller's transaction; secrets in the payload are dropped."""
    job.status = (JobStatus.FAILED if error else JobStatus.SUCCEEDED).value
    job.error = error
    job.finished_at = utcnow()
    if "password" in job.payload:
        job.payload = {k: v for k, v in job.payload.items() if k != "password"}


def pending_for(session: Session, document_ids: list[int]) -> set[int]:
    """Which of `document_ids` still have queued or running jobs."""
    if not document_ids:
        return set()
    rows = session.scalars(
        select(Job.document_id).where(
            Job.document_id.in_(document_ids),
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        )
    )
    return {r for r in rows if r is not None}
