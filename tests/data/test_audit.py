"""data/audit.py on SQLite and PostgreSQL: append-only rows, filters, paging, streaming,
and a prune that deletes only what is older than the cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from data import audit
from data.audit import Action, AuditFilters, Event, Outcome
from data.errors import InvalidInputError
from data.models import AuditEvent, AuditImmutableError

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def add(s: Session, at: datetime, action: Action = Action.SEARCH, **kw: object) -> AuditEvent:
    kw.setdefault("outcome", Outcome.OK)
    return audit.record(s, Event(action=action, at=at, **kw))  # type: ignore[arg-type]


def count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_an_event_cannot_be_updated_or_deleted(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        row = add(s, T0, summary="who is on leave?")
        row.summary = "something else"
        with pytest.raises(AuditImmutableError):
            s.commit()
        s.rollback()
        s.delete(row)
        with pytest.raises(AuditImmutableError):
            s.commit()
        s.rollback()
        with pytest.raises(AuditImmutableError):
            s.execute(update(AuditEvent).values(summary="x"))
        with pytest.raises(AuditImmutableError):
            s.execute(delete(AuditEvent))
        s.rollback()
    with sessions() as s:
        assert s.scalars(select(AuditEvent.summary)).all() == ["who is on leave?"]


def test_prune_deletes_only_older_events_in_batches(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        for i in range(7):
            add(s, T0 - timedelta(days=200, minutes=i))
        kept = [add(s, T0 - timedelta(days=10)).id, add(s, T0).id]
        # Exactly at the cutoff is kept: only strictly older events go.
        kept.append(add(s, T0 - timedelta(days=180)).id)
        assert audit.prune(s, T0 - timedelta(days=180), batch=3) == 7
        assert sorted(s.scalars(select(AuditEvent.id))) == sorted(kept)
        assert audit.prune(s, T0 - timedelta(days=180)) == 0


def test_filters_each_narrow_the_events(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        a = add(s, T0, key_id=1, collection="hr")
        b = add(s, T0 + timedelta(hours=1), Action.UPLOAD, key_id=2, collection="finance")
        c = add(s, T0 + timedelta(hours=2), key_id=1, collection="hr,finance")
        d = add(s, T0 + timedelta(hours=3), Action.AUTH_FAILED, outcome=Outcome.DENIED, status=401)
        e = add(s, T0 + timedelta(hours=4), collection="h_")  # '_' is no LIKE wildcard here

        def ids(**kw: object) -> list[int]:
            q = audit.events_query(AuditFilters(**kw)).order_by(AuditEvent.id)  # type: ignore[arg-type]
            return [r.id for r in s.scalars(q)]

        assert ids() == [a.id, b.id, c.id, d.id, e.id]
        assert ids(since=T0 + timedelta(hours=1)) == [b.id, c.id, d.id, e.id]
        assert ids(until=T0 + timedelta(hours=1)) == [a.id]
        # A zone other than UTC means the same instant.
        plus2 = timezone(timedelta(hours=2))
        assert ids(since=datetime(2026, 11, 1, 4, tzinfo=plus2)) == [c.id, d.id, e.id]
        assert ids(action=Action.UPLOAD) == [b.id]
        assert ids(key_id=1) == [a.id, c.id]
        assert ids(collection="finance") == [b.id, c.id]
        assert ids(collection="hr") == [a.id, c.id]
        assert ids(collection="h_") == [e.id]
        assert ids(outcome=Outcome.DENIED) == [d.id]
        assert ids(key_id=1, collection="finance") == [c.id]


def test_pages_newest_first_and_stream_oldest_first(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        made = [add(s, T0 + timedelta(minutes=i)).id for i in range(7)]
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            rows, cursor = audit.page(s, AuditFilters(), limit=3, cursor=cursor)
            seen += [r.id for r in rows]
            pages += 1
            if cursor is None:
                break
        assert seen == made[::-1] and pages == 3
        assert [r.id for r in audit.stream(s, AuditFilters(), batch=2)] == made
        since = AuditFilters(since=T0 + timedelta(minutes=5))
        assert [r.id for r in audit.stream(s, since, batch=2)] == made[5:]
        with pytest.raises(InvalidInputError):
            audit.page(s, AuditFilters(), limit=0, cursor=None)
        with pytest.raises(InvalidInputError):
            audit.page(s, AuditFilters(), limit=5, cursor="not-a-cursor")


def test_long_text_is_clipped_and_the_outcome_follows_the_status(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        row = add(s, T0, summary="q" * 1000, object_id="o" * 500)
        assert len(row.summary or "") == audit.SUMMARY_CHARS and (row.summary or "")[-1] == "…"
        assert len(row.object_id or "") == 100
        assert count(s) == 1
    statuses = {200: "ok", 202: "ok", 401: "denied", 403: "denied", 404: "not_found"}
    statuses |= {409: "rejected", 413: "rejected", 422: "rejected", 429: "rate_limited"}
    statuses |= {500: "error", 503: "error"}
    assert {k: Outcome.of(k).value for k in statuses} == statuses
