"""Numbers for /metrics, read from SQL at scrape time: queue depth, recent job durations,
embedding throughput, documents and chunks per collection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.jobs import JobStatus
from data.models import Collection, Document, Job

RECENT_JOBS = 500  # finished jobs the duration and throughput figures are computed from


@dataclass(frozen=True)
class CollectionCounts:
    """One collection's ready documents and their chunks."""

    name: str
    documents: int
    chunks: int


@dataclass(frozen=True)
class JobDuration:
    """How long one finished job ran, and the chunks it embedded."""

    type: str
    status: str
    seconds: float
    chunks_embedded: int


def queue_depth(session: Session) -> dict[str, int]:
    """Jobs by status among queued and running (both always present)."""
    wanted = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    rows = session.execute(
        select(Job.status, func.count()).where(Job.status.in_(wanted)).group_by(Job.status)
    ).all()
    counts = {status: 0 for status in wanted}
    counts.update({status: n for status, n in rows})
    return counts


def collection_counts(session: Session) -> list[CollectionCounts]:
    """Documents and chunks of every collection (one being deleted included), by name."""
    q = (
        select(
            Collection.name,
            func.count(Document.id),
            func.coalesce(func.sum(Document.chunk_count), 0),
        )
        .outerjoin(Document, Document.collection_id == Collection.id)
        .group_by(Collection.id, Collection.name)
        .order_by(Collection.name)
    )
    return [
        CollectionCounts(name, int(docs), int(chunks)) for name, docs, chunks in session.execute(q)
    ]


def recent_job_durations(session: Session, limit: int = RECENT_JOBS) -> list[JobDuration]:
    """The latest `limit` finished jobs that started, newest first."""
    done = [JobStatus.SUCCEEDED.value, JobStatus.FAILED.value]
    q = (
        select(Job.type, Job.status, Job.started_at, Job.finished_at, Job.progress)
        .where(Job.status.in_(done), Job.started_at.is_not(None), Job.finished_at.is_not(None))
        .order_by(Job.id.desc())
        .limit(limit)
    )
    out = []
    for kind, status, started, finished, progress in session.execute(q):
        seconds = max(0.0, (_utc(finished) - _utc(started)).total_seconds())
        embedded = (progress or {}).get("chunks_embedded", 0)
        out.append(JobDuration(kind, status, seconds, int(embedded or 0)))
    return out


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
