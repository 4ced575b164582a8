"""/v1/collections: create and list knowledge bases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.exc import IntegrityError

from api.audit import AuditDep, audited
from api.deps import ContainerDep, ScopeDep, SessionDep, require
from api.errors import responses
from api.job_schemas import JobOut, RebuildIn
from api.routes.jobs import job_out
from api.schemas import CollectionIn, CollectionOut, Page
from data.audit import Action
from data.errors import ConflictError, NotFoundError
from data.models import Collection
from data.pagination import DEFAULT_LIMIT, paginate
from data.repositories import collections_query, find_collection, get_collection
from data.scope import Role
from ingest.collections import request_collection_delete
from ingest.rebuild import request_rebuild

router = APIRouter(prefix="/v1/collections", tags=["collections"])
ADMIN = require(Role.ADMIN)


def to_out(c: Collection) -> CollectionOut:
    """Wire form of a collection."""
    return CollectionOut(
        name=c.name,
        description=c.description,
        status=c.status,
        generation=c.generation,
        embedder_model_id=c.embedder_model_id,
        embedder_path=c.embedder_path,
        embedder_dim=c.embedder_dim,
        created_at=c.created_at,
    )


@router.post(
    "",
    status_code=201,
    dependencies=[ADMIN, audited(Action.CREATE_COLLECTION)],
    responses=responses(400, 409, 413, 422),
)
def create_collection(body: CollectionIn, session: SessionDep, audit: AuditDep) -> CollectionOut:
    """Create a collection; its name must be new."""
    audit.about(collection=body.name)
    coll = Collection(name=body.name, description=body.description)
    session.add(coll)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"collection {body.name!r} already exists") from exc
    return to_out(coll)


@router.get("/{name}", responses=responses(404, 422))
def get_collection_state(name: str, session: SessionDep, scope: ScopeDep) -> CollectionOut:
    """One collection (also while it is being deleted)."""
    coll = find_collection(session, name, scope=scope)
    if coll is None:
        raise NotFoundError(f"collection {name!r} not found")
    return to_out(coll)


@router.delete(
    "/{name}",
    status_code=202,
    dependencies=[ADMIN, audited(Action.DELETE_COLLECTION)],
    responses=responses(404, 409, 422),
)
def delete_collection(name: str, session: SessionDep, scope: ScopeDep, audit: AuditDep) -> JobOut:
    """Hide the collection now; documents, vectors, folders and originals go in the background."""
    _coll, job = request_collection_delete(session, name, scope=scope)
    audit.about(summary=f"job {job.id}")
    return job_out(session, job)


@router.post(
    "/{name}/rebuild",
    status_code=202,
    dependencies=[ADMIN, audited(Action.REBUILD)],
    responses=responses(400, 403, 404, 409, 413, 422),
)
def rebuild(
    name: str,
    body: RebuildIn,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    audit: AuditDep,
) -> JobOut:
    """Re-chunk and re-embed with another model; searches use the old index until the swap."""
    audit.about(summary=body.embedding_model)
    roots = container.settings.model_root_paths
    coll = get_collection(session, name, scope=scope)
    job = request_rebuild(session, coll, body.embedding_model, roots)
    audit.about(summary=f"job {job.id}: {body.embedding_model}")
    return job_out(session, job)


@router.get("", responses=responses(422))
def list_collections(
    session: SessionDep,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CollectionOut]:
    """All collections, oldest first."""
    stmt = collections_query(scope=scope)
    rows, nxt = paginate(session, stmt, Collection.id, limit=limit, cursor=cursor)
    return Page[CollectionOut](items=[to_out(c) for c in rows], next_cursor=nxt)
