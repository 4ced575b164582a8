"""/v1/audit: the audit log, newest first, for admins of every collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep, require
from api.errors import responses
from api.routes.keys import every_collection
from api.schemas import AuditEventOut, Page, UtcDatetime
from data import audit
from data.audit import Action, AuditFilters, Outcome
from data.models import AuditEvent
from data.pagination import DEFAULT_LIMIT, MAX_ID
from data.scope import Role

# Whoever may read the log sees every collection's questions: an admin of all of them.
router = APIRouter(
    prefix="/v1/audit", tags=["audit"], dependencies=[require(Role.ADMIN), every_collection]
)


def event_out(row: AuditEvent) -> AuditEventOut:
    """Wire form of an audit event: its columns, field for field."""
    return AuditEventOut.model_validate(row, from_attributes=True)


@router.get("", responses=responses(422))
def list_events(
    session: SessionDep,
    since: Annotated[UtcDatetime | None, Query(description="from this time on (inclusive)")] = None,
    until: Annotated[UtcDatetime | None, Query(description="before this time")] = None,
    action: Action | None = None,
    key_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    collection: Annotated[str | None, Query(max_length=100)] = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[AuditEventOut]:
    """Audit events, newest first, filtered (every filter given must hold)."""
    filters = AuditFilters(
        since=since,
        until=until,
        action=action,
        key_id=key_id,
        collection=collection,
        outcome=outcome,
    )
    rows, nxt = audit.page(session, filters, limit=limit, cursor=cursor)
    return Page[AuditEventOut](items=[event_out(r) for r in rows], next_cursor=nxt)
