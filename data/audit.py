"""The audit log: record an event, read them back (filtered, paged), prune old ones.

Rows are append-only from the application's side (data/models.py refuses any ORM update or
delete of an AuditEvent); `prune` is the one exception, for retention.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.orm import Session

from data.errors import InvalidInputError
from data.models import AUDIT_PRUNE_OPTION, AuditEvent
from data.pagination import MAX_LIMIT, decode_cursor, encode_cursor

SUMMARY_CHARS = 300
# Audit ids are BIGINT on PostgreSQL: a cursor may point past what other tables hold.
_MAX_AUDIT_ID = 2**63 - 1
_PRUNE_BATCH = 1000


class Action(enum.StrEnum):
    """Every action the log knows (the fixed list the README documents)."""

    SEARCH = "search"
    CHAT = "chat"
    CHAT_COMPLETIONS = "chat.completions"
    EMBEDDINGS = "embeddings"
    UPLOAD = "upload"
    REPLACE = "replace"
    DOCUMENT_READ = "document.read"  # the original file downloaded
    DELETE_DOCUMENT = "delete.document"
    CREATE_COLLECTION = "create.collection"
    DELETE_COLLECTION = "delete.collection"
    REBUILD = "rebuild"
    SOURCE_CREATE = "source.create"
    SOURCE_UPDATE = "source.update"
    SOURCE_DELETE = "source.delete"
    SOURCE_RUN = "source.run"  # a re-sync of folders queued (POST /v1/jobs, grounded reindex)
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    AUTH_FAILED = "auth.failed"  # 401: no key, or an unknown, malformed or revoked one
    ACCESS_DENIED = "access.denied"  # 403 on a route that has no action of its own


# Actions whose summary is the caller's question (dropped when keep_questions is off).
QUESTION_ACTIONS = frozenset({Action.SEARCH, Action.CHAT, Action.CHAT_COMPLETIONS})


class Outcome(enum.StrEnum):
    """How a request ended, from its HTTP status (the status is kept beside it)."""

    OK = "ok"  # 2xx, 3xx
    DENIED = "denied"  # 401, 403
    NOT_FOUND = "not_found"  # 404
    REJECTED = "rejected"  # any other 4xx: invalid input, conflict, too large...
    RATE_LIMITED = "rate_limited"  # 429
    ERROR = "error"  # 5xx

    @classmethod
    def of(cls, status: int) -> Outcome:
        """The outcome of an HTTP status."""
        if status < 400:
            return cls.OK
        special = {401: cls.DENIED, 403: cls.DENIED, 404: cls.NOT_FOUND, 429: cls.RATE_LIMITED}
        return special.get(status) or (cls.REJECTED if status < 500 else cls.ERROR)


@dataclass(frozen=True)
class Event:
    """One event to record; `at` None means now."""

    action: Action
    outcome: Outcome
    status: int | None = None
    key_id: int | None = None
    actor: str | None = None
    key_prefix: str | None = None
    collection: str | None = None
    object_id: str | None = None
    payload_hash: str | None = None
    summary: str | None = None
    client_ip: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AuditFilters:
    """What to read: every given filter must hold (AND); `since` inclusive, `until` not."""

    since: datetime | None = None
    until: datetime | None = None
    action: Action | None = None
    key_id: int | None = None
    collection: str | None = None
    outcome: Outcome | None = None


def payload_hash(data: bytes) -> str:
    """The sha256 hex of a request payload."""
    return hashlib.sha256(data).hexdigest()


def clip(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters (an ellipsis marks a cut)."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def record(session: Session, event: Event) -> AuditEvent:
    """Append one event and commit."""
    row = AuditEvent(
        at=as_utc(event.at) if event.at else datetime.now(UTC),
        action=event.action.value,
        outcome=event.outcome.value,
        status=event.status,
        key_id=event.key_id,
        actor=clip(event.actor, 200),
        key_prefix=clip(event.key_prefix, 16),
        collection=clip(event.collection, 300),
        object_id=clip(event.object_id, 100),
        payload_hash=event.payload_hash,
        summary=clip(event.summary, SUMMARY_CHARS),
        client_ip=clip(event.client_ip, 64),
    )
    session.add(row)
    session.commit()
    return row


def _like_escaped(name: str) -> str:
    return name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC (a naive one is taken as UTC): SQLite compares the text, without zone."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def events_query(filters: AuditFilters) -> Select[AuditEvent]:
    """The events that match `filters` (no order)."""
    stmt = select(AuditEvent)
    f = filters
    if f.since is not None:
        stmt = stmt.where(AuditEvent.at >= as_utc(f.since))
    if f.until is not None:
        stmt = stmt.where(AuditEvent.at < as_utc(f.until))
    if f.action is not None:
        stmt = stmt.where(AuditEvent.action == f.action.value)
    if f.key_id is not None:
        stmt = stmt.where(AuditEvent.key_id == f.key_id)
    if f.outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == f.outcome.value)
    if f.collection is not None:
        # A query over several collections names them all, comma-separated.
        name = _like_escaped(f.collection)
        stmt = stmt.where(
            or_(
                AuditEvent.collection == f.collection,
                AuditEvent.collection.like(f"{name},%", escape="\\"),
                AuditEvent.collection.like(f"%,{name}", escape="\\"),
                AuditEvent.collection.like(f"%,{name},%", escape="\\"),
            )
        )
    return stmt


def page(
    session: Session, filters: AuditFilters, *, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEvent], str | None]:
    """Newest first: one page of events before `cursor`, and the cursor of the next."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    before = decode_cursor(cursor, max_id=_MAX_AUDIT_ID)
    stmt = events_query(filters)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    rows = session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)


def stream(session: Session, filters: AuditFilters, batch: int = 500) -> Iterator[AuditEvent]:
    """Every matching event, oldest first, read `batch` rows at a time (never all at once)."""
    after = 0
    while True:
        stmt = events_query(filters).where(AuditEvent.id > after)
        rows = session.scalars(stmt.order_by(AuditEvent.id).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id
        session.expunge_all()  # what was yielded need not stay in the identity map


def prune(session: Session, older_than: datetime, batch: int = _PRUNE_BATCH) -> int:
    """Delete events before `older_than`, `batch` rows per short transaction; the count."""
    total = 0
    while True:
        ids = select(AuditEvent.id).where(AuditEvent.at < as_utc(older_than)).limit(batch)
        chosen = list(session.scalars(ids))
        if not chosen:
            return total
        result = session.execute(
            delete(AuditEvent).where(AuditEvent.id.in_(chosen)),
            execution_options={AUDIT_PRUNE_OPTION: True, "synchronize_session": False},
        )
        session.commit()
        total += int(getattr(result, "rowcount", 0) or 0)
