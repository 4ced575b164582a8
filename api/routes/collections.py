"""/v1/collections: create and list knowledge bases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep
from api.schemas import CollectionIn, CollectionOut, Page
from data.errors import ConflictError
from data.models import Collection
from data.pagination import DEFAULT_LIMIT, paginate

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def to_out(c: Collection) -> CollectionOut:
    """Wire form of a collection."""
    return CollectionOut(
        name=c.name,
        description=c.description,
        embedder_model_id=c.embedder_model_id,
        embedder_dim=c.embedder_dim,
        created_at=c.created_at,
    )


@router.post("", status_code=201)
def create_collection(body: CollectionIn, session: SessionDep) -> CollectionOut:
    """Create a collection; its name must be new."""
    coll = Collection(name=body.name, description=body.description)
    session.add(coll)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"collection {body.name!r} already exists") from exc
    return to_out(coll)


@router.get("")
def list_collections(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CollectionOut]:
    """All collections, oldest first."""
    rows, nxt = paginate(session, select(Collection), Collection.id, limit=limit, cursor=cursor)
    return Page[CollectionOut](items=[to_out(c) for c in rows], next_cursor=nxt)
