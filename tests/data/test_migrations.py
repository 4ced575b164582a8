"""Alembic migrations: no drift from the models, seed rows, a clean down-and-up cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Integer, delete, insert, inspect, select, text

from data.db import make_engine
from data.leases import WRITER
from data.migrate import alembic_config
from data.models import (
    DEFAULT_COLLECTION,
    Base,
    Chunk,
    CitationRecord,
    Collection,
    Conversation,
    Document,
    Job,
    Lease,
    Message,
)

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


def autoincrement_tables(engine: Engine) -> set[str]:
    """SQLite tables created with AUTOINCREMENT (compare_metadata does not look at it)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        return {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}


def test_migrated_database_matches_the_models(engine: Engine, tmp_path: Path) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert drift(engine) == []
    if engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path / 'create_all.db'}")
        Base.metadata.create_all(fresh)
        assert autoincrement_tables(engine) == autoincrement_tables(fresh)
        fresh.dispose()


def test_every_integer_id_is_never_reused() -> None:
    # Ids are kept after their row is gone (citations, jobs, FAISS files, index log), so
    # SQLite must not hand one out again: every integer key is AUTOINCREMENT.
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, Integer):
            assert table.dialect_options["sqlite"]["autoincrement"], table.name


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


def test_upgrade_keeps_rows_and_stops_reusing_ids(db_url: str, engine: Engine) -> None:
    """A database at 0004 with a deleted document whose id SQLite already gave away."""
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "0004")
    engine.dispose()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        sales = _add(conn, Collection, name="sales", created_at=t0)
        handbook, leave, old = (
            _doc(conn, 1, n, t0) for n in ("handbook.md", "leave.txt", "old.txt")
        )
        _add(conn, Chunk, **_chunk(handbook))
        _add(conn, Job, type="ingest", status="done", collection_id=1, document_id=old)
        conv = _add(conn, Conversation, created_at=t0, updated_at=t0)
        msg = _add(
            conn,
            Message,
            conversation_id=conv,
            role="assistant",
            content="a",
            created_at=t0 + timedelta(hours=1),
        )
        _add(conn, CitationRecord, **_citation(msg, 1, handbook, "handbook.md"))
        _add(conn, CitationRecord, **_citation(msg, 2, leave, "leave.txt"))
        conn.execute(delete(Document).where(Document.id.in_([leave, old])))
        new = _doc(conn, sales, "sales.txt", t0 + timedelta(hours=2))
    if engine.dialect.name == "sqlite":
        assert new == leave  # the bug: max(id)+1 hands the deleted document's id out again

    command.upgrade(cfg, "head")
    engine.dispose()
    with engine.begin() as conn:
        kept = conn.execute(select(Document.id, Document.filename).order_by(Document.id)).all()
        assert [tuple(r) for r in kept] == [(handbook, "handbook.md"), (new, "sales.txt")]
        assert conn.scalar(select(Chunk.document_id)) == handbook
        cites = conn.execute(select(CitationRecord.filename, CitationRecord.document_id)).all()
        # The reused (SQLite) or dangling (PostgreSQL) id no longer names a document.
        assert sorted(tuple(r) for r in cites) == [("handbook.md", handbook), ("leave.txt", None)]
        # Ids never come back: not the deleted ones, not one a job still names.
        conn.execute(delete(Document).where(Document.id == new))
        again = _doc(conn, sales, "sales.txt", t0)
        assert again > max(old, new)
        conn.execute(delete(Document).where(Document.id == again))
        conn.execute(delete(Collection).where(Collection.id == sales))
        assert _add(conn, Collection, name="x", created_at=t0) > sales
        # Deleting a cited document clears the reference and keeps the citation.
        conn.execute(delete(Chunk))
        conn.execute(delete(Document).where(Document.id == handbook))
        assert conn.scalars(select(CitationRecord.document_id)).all() == [None, None]


def _add(conn: Connection, model: type[Base], **values: object) -> int:
    return int(conn.execute(insert(model).values(**values)).inserted_primary_key[0])


def _doc(conn: Connection, collection_id: int, name: str, at: datetime) -> int:
    return _add(
        conn,
        Document,
        collection_id=collection_id,
        filename=name,
        content_hash=name,
        media_type="text/plain",
        size=1,
        status="indexed",
        created_at=at,
        updated_at=at,
    )


def _chunk(doc: int) -> dict[str, object]:
    return {
        "document_id": doc,
        "collection_id": 1,
        "ordinal": 0,
        "start_offset": 0,
        "end_offset": 1,
        "text": "x",
        "token_count": 1,
        "text_hash": "x",
        "vector": b"",
    }


def _citation(message_id: int, index: int, doc: int, name: str) -> dict[str, object]:
    return {
        "message_id": message_id,
        "index": index,
        "document_id": doc,
        "filename": name,
        "quote": "q",
        "quote_start": 0,
        "quote_end": 1,
        "support": 1.0,
        "supported": True,
    }
