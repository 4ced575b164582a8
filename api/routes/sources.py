"""/v1/collections/{name}/sources and /v1/sources/{id}: watched folders."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy import func, select

from api.audit import AuditDep, audited
from api.deps import ContainerDep, IdPath, ScopeDep, SessionDep, require
from api.errors import responses
from api.job_schemas import JobOut, SourceIn, SourceOut, SourcePatch
from api.routes.jobs import job_out
from api.schemas import Page
from data.audit import Action
from data.models import Collection, Document, Source
from data.repositories import get_collection
from data.repositories import get_source as find_source
from data.scope import Role
from ingest.sources import SourceSpec, create_source, remove_source, update_source

router = APIRouter(prefix="/v1", tags=["sources"], dependencies=[require(Role.EDITOR)])


def source_out(s: SessionDep, src: Source) -> SourceOut:
    """Wire form of a source, with how many documents it holds."""
    coll = s.get(Collection, src.collection_id)
    docs = s.scalar(select(func.count()).select_from(Document).where(Document.source_id == src.id))
    return SourceOut(
        id=src.id,
        collection=coll.name if coll else "",
        path=src.path,
        prefix=src.prefix,
        schedule=src.schedule,
        timezone=src.timezone,
        include=list(src.include),
        exclude=list(src.exclude),
        paused=src.paused,
        next_run_at=src.next_run_at,
        last_run_at=src.last_run_at,
        last_job_id=src.last_job_id,
        documents=int(docs or 0),
    )


@router.post(
    "/collections/{name}/sources",
    status_code=201,
    dependencies=[audited(Action.SOURCE_CREATE)],
    responses=responses(400, 403, 404, 409, 413, 422),
)
def add_source(
    name: str,
    body: SourceIn,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    audit: AuditDep,
) -> dict[str, SourceOut | JobOut]:
    """Watch a folder; its first sync is queued at once and returned as `job`."""
    audit.about(summary=body.path)
    coll = get_collection(session, name, scope=scope)
    spec = SourceSpec(**body.model_dump())
    src, job = create_source(
        session, coll, spec, container.settings.source_root_paths, datetime.now(UTC)
    )
    audit.about(object_id=src.id)
    return {"source": source_out(session, src), "job": job_out(session, job)}


@router.get("/collections/{name}/sources", responses=responses(404, 409, 422))
def list_sources(name: str, session: SessionDep, scope: ScopeDep) -> Page[SourceOut]:
    """The folders a collection watches."""
    coll = get_collection(session, name, scope=scope)
    rows = session.scalars(
        select(Source).where(Source.collection_id == coll.id).order_by(Source.id)
    )
    return Page[SourceOut](items=[source_out(session, r) for r in rows])


@router.get("/sources/{source_id}", responses=responses(404, 422))
def get_source(source_id: IdPath, session: SessionDep, scope: ScopeDep) -> SourceOut:
    """One source."""
    return source_out(session, find_source(session, source_id, scope=scope))


@router.patch(
    "/sources/{source_id}",
    dependencies=[audited(Action.SOURCE_UPDATE)],
    responses=responses(400, 404, 413, 422),
)
def change_source(
    source_id: IdPath, body: SourcePatch, session: SessionDep, scope: ScopeDep, audit: AuditDep
) -> SourceOut:
    """Change the schedule, time zone, globs, or pause/resume; omitted fields stay."""
    src = find_source(session, source_id, scope=scope)
    sent = body.model_fields_set
    audit.about(collection=_collection_name(session, src), summary=", ".join(sorted(sent)))
    spec = SourceSpec(
        schedule=body.schedule,
        timezone=body.timezone,
        include=body.include,
        exclude=body.exclude,
        paused=body.paused,
        clear_schedule="schedule" in sent and body.schedule is None,
    )
    return source_out(session, update_source(session, src, spec, datetime.now(UTC)))


@router.delete(
    "/sources/{source_id}",
    status_code=202,
    dependencies=[audited(Action.SOURCE_DELETE)],
    responses=responses(404, 422),
)
def delete_source(
    source_id: IdPath,
    session: SessionDep,
    scope: ScopeDep,
    audit: AuditDep,
    keep_documents: bool = False,
) -> dict[str, int]:
    """Stop watching; its documents are deleted in the background unless `keep_documents`."""
    src = find_source(session, source_id, scope=scope)
    audit.about(collection=_collection_name(session, src), summary=src.path)
    n = remove_source(session, src, keep_documents=keep_documents)
    return {"documents": n}


def _collection_name(s: SessionDep, src: Source) -> str | None:
    coll = s.get(Collection, src.collection_id)
    return coll.name if coll else None
