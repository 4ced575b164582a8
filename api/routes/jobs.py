"""/v1/jobs: run a re-index now, follow any job's progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.audit import AuditDep, audited
from api.deps import IdPath, ScopeDep, SessionDep, require
from api.errors import responses
from api.job_schemas import JobIn, JobOut
from api.schemas import Page
from data.audit import Action
from data.jobs import JobStatus, JobType
from data.models import Collection, Job
from data.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from data.repositories import get_collection, jobs_query
from data.repositories import get_job as find_job
from data.scope import Role
from ingest.sources import request_reindex

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[require(Role.EDITOR)])


def job_out(s: Session, job: Job) -> JobOut:
    """Wire form of a job (the password of an encrypted upload is never shown)."""
    coll = s.get(Collection, job.collection_id)
    return JobOut(
        id=job.id,
        type=job.type,
        status=job.status,
        collection=coll.name if coll else None,
        document_id=job.document_id,
        source_id=job.source_id,
        attempts=job.attempts,
        progress=dict(job.progress or {}),
        error=job.error,
        worker=job.worker,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.post(
    "",
    status_code=202,
    dependencies=[audited(Action.SOURCE_RUN)],
    responses=responses(400, 404, 409, 413, 422),
)
def start_job(body: JobIn, session: SessionDep, scope: ScopeDep, audit: AuditDep) -> JobOut:
    """Queue a re-sync of the collection's folders, or of one; an open one is returned as is."""
    audit.about(collection=body.collection, object_id=body.source_id)
    coll = get_collection(session, body.collection, scope=scope)
    job = request_reindex(session, coll, body.source_id)
    audit.about(summary=f"job {job.id}")
    return job_out(session, job)


@router.get("/{job_id}", responses=responses(404, 422))
def get_job(job_id: IdPath, session: SessionDep, scope: ScopeDep) -> JobOut:
    """A job's state, progress counters and file errors."""
    return job_out(session, find_job(session, job_id, scope=scope))


@router.get("", responses=responses(404, 409, 422))
def list_jobs(
    session: SessionDep,
    scope: ScopeDep,
    collection: str | None = None,
    status: JobStatus | None = None,
    type: JobType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[JobOut]:
    """Jobs, newest first, optionally of one collection, status or type."""
    stmt = jobs_query(scope=scope)
    if collection is not None:
        stmt = stmt.where(Job.collection_id == get_collection(session, collection, scope=scope).id)
    if status is not None:
        stmt = stmt.where(Job.status == status.value)
    if type is not None:
        stmt = stmt.where(Job.type == type.value)
    before = decode_cursor(cursor)
    if before:
        stmt = stmt.where(Job.id < before)
    rows = session.scalars(stmt.order_by(Job.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].id) if more and rows else None
    return Page[JobOut](items=[job_out(session, j) for j in rows], next_cursor=nxt)
