"""The durable job queue in SQL; only the lease holder claims jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
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


@dataclass(frozen=True)
class SizeClasses:
    """Which ingest jobs are small (run first) and when a waiting large one is due anyway."""

    small_bytes: int = 0  # documents up to this size are small; 0 = one class (plain FIFO)
    max_wait_s: float = 300.0  # a large ingest queued this long is taken in turn (aging)


def next_small(session: Session, classes: SizeClasses) -> Job | None:
    """The oldest queued ingest job of a small document, if any."""
    if classes.small_bytes <= 0:
        return None
    return session.scalars(
        select(Job)
        .join(Document, Job.document_id == Document.id)
        .where(
            Job.status == JobStatus.QUEUED.value,
            Job.type == JobType.INGEST.value,
            Document.size <= classes.small_bytes,
        )
        .order_by(Job.id)
        .limit(1)
    ).first()


def _next(session: Session, classes: SizeClasses) -> Job | None:
    """The oldest queued job, unless it is a large ingest younger than `max_wait_s` and a
    small one waits: then that one (small files do not queue behind a huge one)."""
    oldest = session.scalars(
        select(Job).where(Job.status == JobStatus.QUEUED.value).order_by(Job.id).limit(1)
    ).first()
    if oldest is None or classes.small_bytes <= 0 or oldest.type != JobType.INGEST.value:
        return oldest
    doc = session.get(Document, oldest.document_id) if oldest.document_id else None
    if doc is None or doc.size <= classes.small_bytes:
        return oldest
    created = oldest.created_at
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=UTC)
    if (utcnow() - created).total_seconds() >= classes.max_wait_s:
        return oldest
    return next_small(session, classes) or oldest


def claim_next(
    session: Session,
    *,
    fence_holder: str,
    ttl_s: float,
    classes: SizeClasses | None = None,
    small_only: bool = False,
) -> Job | None:
    """Mark the next queued job running and return it; only the writer-lease holder can.

    FIFO, except that small ingest jobs go before large ones queued less than
    `classes.max_wait_s` ago; `small_only` claims only a small ingest job (the worker's
    turns between the batches of a large one)."""
    fence(session, WRITER, fence_holder, ttl_s)
    classes = classes or SizeClasses()
    job = next_small(session, classes) if small_only else _next(session, classes)
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


def progress_for(session: Session, document_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The progress of each document's queued or running ingest job (latest first wins)."""
    if not document_ids:
        return {}
    rows = session.execute(
        select(Job.document_id, Job.id, Job.status, Job.progress)
        .where(
            Job.document_id.in_(document_ids),
            Job.type == JobType.INGEST.value,
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        )
        .order_by(Job.id)
    )
    return {
        doc_id: {"job_id": job_id, "job_status": status, **(progress or {})}
        for doc_id, job_id, status, progress in rows
        if doc_id is not None
    }
