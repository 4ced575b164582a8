"""/v1/keys: API keys, for admins (the secret is returned once, at creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from api.audit import AuditDep, audited
from api.deps import ScopeDep, SessionDep, require
from api.errors import responses
from api.schemas import Page, UtcDatetime
from data import keys
from data.audit import Action
from data.errors import ForbiddenError
from data.models import ApiKey
from data.scope import Role


def _every_collection(scope: ScopeDep) -> None:
    # An admin limited to some collections could otherwise mint a key for all of them,
    # or read other collections' names in the key list.
    if scope.collections is not None:
        raise ForbiddenError("managing keys needs an admin key for every collection")


router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    dependencies=[require(Role.ADMIN), Depends(_every_collection)],
)
# GET /v1/me: any role may read its own key (the web page shows what the role allows). Not
# under /v1/keys/, where DELETE /v1/keys/{ref} would claim the path too.
me_router = APIRouter(prefix="/v1", tags=["keys"])
# Also guards /v1/audit: the log names every collection's documents and questions.
every_collection = Depends(_every_collection)

Name = Annotated[str, Field(min_length=1, max_length=100)]


class KeyIn(BaseModel):
    """A key to create: who it is for, its role, and the collections it may use."""

    name: Name
    role: Role
    # None or empty: every collection (admins only).
    collections: Annotated[list[Name], Field(max_length=1000)] | None = None


class KeyOut(BaseModel):
    """A key as listed: never its secret."""

    id: int
    name: str
    prefix: str
    role: Role
    collections: list[str] | None
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None
    last_used_at: UtcDatetime | None


class KeyCreated(KeyOut):
    """A new key, with the full key shown this once."""

    key: str


class MeOut(BaseModel):
    """The caller's own key; `id` and `name` are null when authentication is off."""

    id: int | None
    name: str | None
    role: Role
    collections: list[str] | None  # null: every collection


def key_out(row: ApiKey) -> KeyOut:
    """Wire form of a key."""
    return KeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=Role(row.role),
        collections=row.collections,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@router.get("", responses=responses(422))
def list_keys(session: SessionDep) -> Page[KeyOut]:
    """Every key, revoked ones included (never a secret)."""
    return Page[KeyOut](items=[key_out(k) for k in keys.list_keys(session)])


@router.post(
    "",
    status_code=201,
    dependencies=[audited(Action.KEY_CREATE)],
    responses=responses(400, 413, 422),
)
def create_key(body: KeyIn, session: SessionDep, audit: AuditDep) -> KeyCreated:
    """A new key; `key` is shown only in this answer (only its hash is stored)."""
    audit.about(summary=keys.describe(body.name, body.role, body.collections))
    new = keys.create_key(session, name=body.name, role=body.role, collections=body.collections)
    audit.about(object_id=new.row.id)
    return KeyCreated(**key_out(new.row).model_dump(), key=new.key)


@router.delete("/{ref}", dependencies=[audited(Action.KEY_REVOKE)], responses=responses(404, 422))
def revoke_key(
    ref: Annotated[str, Path(max_length=20)], session: SessionDep, audit: AuditDep
) -> KeyOut:
    """Revoke a key by id or prefix: it is refused from the next request on."""
    row = keys.revoke_key(session, ref)
    audit.about(object_id=row.id, summary=f"{row.name} ({row.prefix})")
    return key_out(row)


@me_router.get("/me")
def read_me(session: SessionDep, scope: ScopeDep) -> MeOut:
    """The caller's key: its name, role and the collections it may use."""
    row = session.get(ApiKey, scope.key_id) if scope.key_id is not None else None
    grants = sorted(scope.collections) if scope.collections is not None else None
    return MeOut(
        id=row.id if row else None,
        name=row.name if row else None,
        role=scope.role,
        collections=grants,
    )
