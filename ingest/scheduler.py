"""The schedule of watched folders: due sources get one reindex job each, missed runs merged."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from data.jobs import JobStatus, JobType, enqueue
from data.leases import WRITER, fence
from data.models import Collection, Job, Source
from ingest.sources import next_run

log = logging.getLogger(__name__)
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def tick(s: Session, now: datetime, *, holder: str, ttl_s: float) -> list[int]:
    """Queue a reindex for every source due at `now` (UTC); returns the new job ids.

    However many runs were missed (the worker was down), a source gets one job and its
    next run moves past `now`. A source whose sync is still queued or running gets none.
    """
    fence(s, WRITER, holder, ttl_s)
    due = s.scalars(
        select(Source)
        .join(Collection, Collection.id == Source.collection_id)
        .where(
            Source.paused.is_(False),
            Source.schedule.is_not(None),
            Source.next_run_at <= now,
            Collection.status == "ready",
        )
        .order_by(Source.id)
    ).all()
    queued: list[int] = []
    for src in due:
        busy = s.scalar(
            select(Job.id).where(
                Job.type == JobType.REINDEX.value,
                Job.status.in_(_OPEN),
                Job.collection_id == src.collection_id,
                or_(Job.source_id == src.id, Job.source_id.is_(None)),
            )
        )
        if busy is None:
            cid = src.collection_id
            job = enqueue(s, type=JobType.REINDEX, collection_id=cid, source_id=src.id)
            s.flush()
            src.last_job_id = job.id
            queued.append(job.id)
        src.next_run_at = next_run(src.schedule, src.timezone, now)
    s.commit()
    if queued:
        log.info("scheduled reindex job(s) %s", queued)
    return queued
