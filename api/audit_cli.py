"""`grounded audit export`: the audit log as JSON lines; what other commands record."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from api.cli_common import CLIError, load_settings
from api.settings import Settings
from data import audit
from data.audit import Action, AuditFilters, Event, Outcome
from data.db import make_engine, make_sessionmaker
from data.models import AuditEvent

app = typer.Typer(add_completion=False, help="The audit log: who did what, when.")
CLI_ACTOR = "cli"  # who a command line change is recorded as


def record_cli(settings: Settings, session: Session, action: Action, **details: Any) -> None:
    """Record a change made from the command line (outcome ok unless `outcome` says)."""
    if settings.audit.enabled:
        details.setdefault("outcome", Outcome.OK)
        audit.record(session, Event(action=action, actor=CLI_ACTOR, **details))


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return audit.as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise CLIError(
            f"{option}: not a date or time like 2026-11-01 or 2026-11-01T08:00Z"
        ) from None


def row_json(row: AuditEvent) -> str:
    """One event as a JSON line."""
    out = {c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns}
    out["at"] = audit.as_utc(row.at).isoformat()
    return json.dumps(out, ensure_ascii=False)


@app.command()
def export(
    since: Annotated[
        str | None, typer.Option(help="from this date or time on, UTC unless it says")
    ] = None,
    until: Annotated[str | None, typer.Option(help="before this date or time")] = None,
    action: Annotated[Action | None, typer.Option(help="only this action")] = None,
    key_id: Annotated[int | None, typer.Option(help="only this key's events")] = None,
    collection: Annotated[str | None, typer.Option(help="only this collection's")] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="only events that ended so")] = None,
) -> None:
    """Print events oldest first, one JSON object a line, read in batches (any size)."""
    filters = AuditFilters(
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        action=action,
        key_id=key_id,
        collection=collection,
        outcome=outcome,
    )
    settings = load_settings(create=False)
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            for row in audit.stream(session, filters):
                typer.echo(row_json(row))
    finally:
        engine.dispose()
