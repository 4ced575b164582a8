"""Watched folders: validated registration, changes, removal, and when each runs next."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from data.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from data.jobs import JobStatus, JobType, enqueue
from data.models import Collection, Document, Job, Source, utcnow
from data.types import DocumentStatus
from ingest.scanner import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, Matcher


@dataclass
class SourceSpec:
    """What a client may set on a source; None leaves a field as it is on update."""

    path: str | None = None
    schedule: str | None = None
    timezone: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    paused: bool | None = None
    prefix: str | None = None
    clear_schedule: bool = False


def next_run(schedule: str | None, timezone: str, after: datetime) -> datetime | None:
    """The first firing of `schedule` (in `timezone`) strictly after `after`, in UTC."""
    if not schedule:
        return None
    local = after.astimezone(ZoneInfo(timezone))
    return next(iter(CronSim(schedule, local))).astimezone(UTC)


def check_schedule(schedule: str | None, timezone: str) -> None:
    """Refuse a bad cron expression or time zone with a message that names it."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"unknown time zone {timezone!r} (e.g. 'Asia/Shanghai')") from exc
    if schedule:
        try:
            CronSim(schedule, datetime.now(UTC))
        except CronSimError as exc:
            raise InvalidInputError(f"bad cron schedule {schedule!r}: {exc}") from exc


def allowed_path(raw: str, roots: list[Path]) -> Path:
    """The folder, resolved, if it lies under a configured root; else a 403 or 422."""
    if not roots:
        raise ForbiddenError("folder sources are disabled: set GROUNDED_SOURCE_ROOTS")
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidInputError(f"path must be absolute, got {raw!r}")
    real = Path(os.path.realpath(path))  # symlinks can't smuggle a path out of the roots
    if not any(real == r or r in real.parents for r in (Path(os.path.realpath(x)) for x in roots)):
        raise ForbiddenError(f"{raw} is not under GROUNDED_SOURCE_ROOTS")
    if not real.is_dir():
        raise InvalidInputError(f"{raw} is not a folder")
    return real


def create_source(
    s: Session, coll: Collection, spec: SourceSpec, roots: list[Path], now: datetime
) -> tuple[Source, Job]:
    """Register a folder and queue its first sync at once."""
    if not spec.path:
        raise InvalidInputError("path is required")
    path = allowed_path(spec.path, roots)
    tz = spec.timezone or "UTC"
    check_schedule(spec.schedule, tz)
    include = spec.include or list(DEFAULT_INCLUDE)
    exclude = DEFAULT_EXCLUDE if spec.exclude is None else spec.exclude
    Matcher(include, exclude)  # validates the globs
    siblings = s.scalars(select(Source).where(Source.collection_id == coll.id)).all()
    _check_overlap(path, siblings)
    prefix = spec.prefix or path.name or "folder"
    if any(o.prefix == prefix for o in siblings):
        raise ConflictError(f"another folder of {coll.name!r} already uses the name {prefix!r}")
    src = Source(
        collection_id=coll.id,
        path=str(path),
        prefix=prefix,
        schedule=spec.schedule or None,
        timezone=tz,
        include=include,
        exclude=list(exclude),
        paused=bool(spec.paused),
        next_run_at=next_run(spec.schedule, tz, now),
    )
    s.add(src)
    s.flush()
    job = enqueue(s, type=JobType.REINDEX, collection_id=coll.id, source_id=src.id)
    s.flush()
    src.last_job_id = job.id
    s.commit()
    return src, job


def _check_overlap(path: Path, siblings: Sequence[Source]) -> None:
    # Nested folders in one collection would index the same file twice.
    for other in siblings:
        o = Path(other.path)
        if o == path or o in path.parents or path in o.parents:
            raise ConflictError(f"{path} overlaps folder {other.path} (source {other.id})")


def update_source(s: Session, src: Source, spec: SourceSpec, now: datetime) -> Source:
    """Change schedule, time zone, globs or pause; the next run is recomputed from now."""
    tz = spec.timezone or src.timezone
    schedule = None if spec.clear_schedule else (spec.schedule or src.schedule)
    check_schedule(schedule, tz)
    include = spec.include if spec.include is not None else src.include
    exclude = spec.exclude if spec.exclude is not None else src.exclude
    Matcher(include, exclude)
    src.timezone, src.schedule = tz, schedule
    src.include, src.exclude = list(include), list(exclude)
    if spec.paused is not None:
        src.paused = spec.paused
    # Resuming does not replay runs missed while paused; the schedule continues from now.
    src.next_run_at = next_run(schedule, tz, now)
    s.commit()
    return src


def remove_source(s: Session, src: Source, *, keep_documents: bool) -> int:
    """Forget a folder; its documents are deleted (or kept as ordinary documents)."""
    docs = s.scalars(select(Document).where(Document.source_id == src.id)).all()
    for doc in docs:
        doc.source_id = None
        if not keep_documents and doc.status != DocumentStatus.DELETING.value:
            doc.status = DocumentStatus.DELETING.value
            enqueue(s, type=JobType.DELETE, collection_id=doc.collection_id, document_id=doc.id)
    # A queued sync of this folder has nothing left to do.
    s.execute(
        update(Job)
        .where(Job.source_id == src.id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.FAILED.value, error="the folder source was removed")
    )
    s.delete(src)
    s.commit()
    return len(docs)


def request_reindex(s: Session, coll: Collection, source_id: int | None) -> Job:
    """Queue a sync of the collection's folders (or one); a queued one is reused."""
    if source_id is not None:
        src = s.get(Source, source_id)
        if src is None or src.collection_id != coll.id:
            raise NotFoundError(f"source {source_id} not found in {coll.name!r}")
    elif not s.scalar(select(Source.id).where(Source.collection_id == coll.id)):
        raise InvalidInputError(
            f"collection {coll.name!r} watches no folders; add one with "
            f"POST /v1/collections/{coll.name}/sources"
        )
    same = Job.source_id.is_(None) if source_id is None else Job.source_id == source_id
    job = s.scalar(
        select(Job).where(
            Job.type == JobType.REINDEX.value,
            Job.collection_id == coll.id,
            same,
            Job.status == JobStatus.QUEUED.value,
        )
    )
    job = job or enqueue(s, type=JobType.REINDEX, collection_id=coll.id, source_id=source_id)
    s.flush()
    if source_id is None:
        # Queued syncs of single folders are covered by this one: merge them into it.
        for other in s.scalars(
            select(Job).where(
                Job.type == JobType.REINDEX.value,
                Job.collection_id == coll.id,
                Job.source_id.is_not(None),
                Job.status == JobStatus.QUEUED.value,
            )
        ):
            other.status = JobStatus.SUCCEEDED.value
            other.progress = {"merged_into": job.id}
            other.finished_at = utcnow()
    s.commit()
    return job
