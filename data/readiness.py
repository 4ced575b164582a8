"""Is a worker processing the queue? Its heartbeat (the writer lease) and the queue's age."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.jobs import JobStatus
from data.leases import WRITER, last_renewal
from data.models import Job


@dataclass(frozen=True)
class WorkerState:
    """The writer's identity and how long ago it last renewed its lease."""

    alive: bool
    holder: str | None
    heartbeat_age_s: float | None  # None: nobody holds the lease
    max_age_s: float


@dataclass(frozen=True)
class QueueState:
    """Jobs waiting and running, and how long the oldest waiting one has waited."""

    queued: int
    running: int
    oldest_queued_age_s: float | None


@dataclass(frozen=True)
class Readiness:
    """Ready when a worker's heartbeat is fresher than `worker.max_age_s`."""

    worker: WorkerState
    queue: QueueState

    @property
    def ready(self) -> bool:
        """Whether queued jobs will be processed."""
        return self.worker.alive


def readiness(
    session: Session, *, lease_ttl_s: float, max_age_s: float = 0.0, now: float | None = None
) -> Readiness:
    """Read the writer's heartbeat and the queue; `max_age_s` 0 means one lease TTL."""
    now = time.time() if now is None else now
    limit = max_age_s or lease_ttl_s
    beat = last_renewal(session, WRITER, lease_ttl_s)
    if beat is None:
        worker = WorkerState(alive=False, holder=None, heartbeat_age_s=None, max_age_s=limit)
    else:
        age = max(0.0, now - beat[1])
        worker = WorkerState(
            alive=age <= limit, holder=beat[0], heartbeat_age_s=age, max_age_s=limit
        )
    return Readiness(worker=worker, queue=_queue(session, now))


def _queue(session: Session, now: float) -> QueueState:
    counts = dict(
        session.execute(
            select(Job.status, func.count())
            .where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
            .group_by(Job.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(Job.created_at)).where(Job.status == JobStatus.QUEUED.value)
    )
    age = None
    if oldest is not None:
        if oldest.tzinfo is None:  # SQLite hands back naive datetimes; they were stored in UTC
            oldest = oldest.replace(tzinfo=UTC)
        age = max(0.0, now - oldest.timestamp())
    return QueueState(
        queued=int(counts.get(JobStatus.QUEUED.value, 0)),
        running=int(counts.get(JobStatus.RUNNING.value, 0)),
        oldest_queued_age_s=age,
    )
