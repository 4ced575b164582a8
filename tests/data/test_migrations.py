"""Alembic migrations: no drift from the models, seed rows, a clean down-and-up cycle."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select

from data.leases import WRITER
from data.migrate import alembic_config
from data.models import DEFAULT_COLLECTION, Base, Collection, Lease

TABLES = {"collections", "documents", "chunks", "index_log", "jobs", "leases"}


def drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def seeded(engine: Engine) -> tuple[list[str], list[tuple[str, str | None, float]]]:
    with engine.connect() as conn:
        names = list(conn.scalars(select(Collection.name)))
        rows = conn.execute(select(Lease.name, Lease.holder, Lease.expires_at))
        leases = [(r.name, r.holder, r.expires_at) for r in rows]
    return names, leases


def test_migrated_database_matches_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert drift(engine) == []


def test_seed_rows_exist(engine: Engine) -> None:
    names, leases = seeded(engine)
    assert names == [DEFAULT_COLLECTION]
    assert leases == [(WRITER, None, 0.0)]


def test_downgrade_to_base_then_upgrade_to_head(db_url: str, engine: Engine) -> None:
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "base")
    engine.dispose()
    assert set(inspect(engine).get_table_names()) & TABLES == set()
    assert drift(engine) != []  # the drift check sees missing tables, so it is not vacuous
    command.upgrade(cfg, "head")
    engine.dispose()
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert drift(engine) == []
    assert seeded(engine) == ([DEFAULT_COLLECTION], [(WRITER, None, 0.0)])
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    assert heads == tuple(ScriptDirectory.from_config(cfg).get_heads())
