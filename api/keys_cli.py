"""`grounded keys create|list|revoke`: API keys from the command line (no key needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from api.audit_cli import record_cli
from api.cli_common import load_settings
from api.settings import Settings
from data import keys
from data.audit import Action
from data.db import make_engine, make_sessionmaker
from data.migrate import upgrade
from data.scope import Role

app = typer.Typer(add_completion=False, help="API keys: create, list, revoke.")


@contextmanager
def _session(*, create: bool) -> Iterator[tuple[Settings, Session]]:
    settings = load_settings(create=create)
    if create:
        upgrade(settings.db_url)  # the first key may come before the first `grounded run`
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield settings, session
    finally:
        engine.dispose()


@app.command()
def create(
    name: Annotated[str, typer.Option(help="who or what the key is for")],
    role: Annotated[Role, typer.Option(help="reader, editor or admin")],
    collections: Annotated[
        str, typer.Option(help="comma-separated collections it may use (empty: all, admins only)")
    ] = "",
) -> None:
    """Create a key and print it once, alone on the last line (only its hash is stored)."""
    with _session(create=True) as (settings, s):
        new = keys.create_key(s, name=name, role=role, collections=collections.split(","))
        summary = keys.describe(name, role, new.row.collections)
        record_cli(settings, s, Action.KEY_CREATE, object_id=str(new.row.id), summary=summary)
        grants = ", ".join(new.row.collections or []) or "all collections"
        typer.echo(
            f"created key {new.row.id} ({new.row.prefix}) for {name!r}: {role.value}, {grants}"
        )
        typer.echo(
            "it is shown only now; keep it secret. Send it as `Authorization: Bearer <key>`:"
        )
        typer.echo(new.key)


@app.command(name="list")
def list_keys() -> None:
    """Every key: id, prefix, name, role, collections, last use (never a secret)."""
    with _session(create=False) as (_settings, s):
        for k in keys.list_keys(s):
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
            grants = ",".join(k.collections or []) or "*"
            typer.echo(f"{k.id}\t{k.prefix}\t{k.name}\t{k.role}\t{grants}\t{state}\tused {used}")


@app.command()
def revoke(ref: Annotated[str, typer.Argument(help="the key's id or prefix")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    with _session(create=False) as (settings, s):
        k = keys.revoke_key(s, ref)
        summary = f"{k.name} ({k.prefix})"
        record_cli(settings, s, Action.KEY_REVOKE, object_id=str(k.id), summary=summary)
        typer.echo(f"revoked key {k.id} ({k.prefix}) for {k.name!r}")
