"""ids never reused: AUTOINCREMENT on SQLite, citations.document_id references documents

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 09:00:00.000000

SQLite hands out max(id)+1 for a table without AUTOINCREMENT, so deleting the newest
document let the next upload take its id and old citations resolved to the new file.
0001 declared AUTOINCREMENT, but 0003's batch rebuild of `documents` and `jobs` dropped
it (a reflected table does not carry it), and `collections` never had it. PostgreSQL
sequences never hand out a value twice, so there only the citation reference changes.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each rebuilt table and every column that holds (or held) one of its ids: the sequence
# restarts above all of them, so an id a deleted row had is not handed out again.
HIGH_WATER = {
    "collections": [
        ("collections", "id"),
        ("documents", "collection_id"),
        ("chunks", "collection_id"),
        ("index_log", "collection_id"),
        ("jobs", "collection_id"),
        ("sources", "collection_id"),
    ],
    "documents": [("documents", "id"), ("jobs", "document_id"), ("citations", "document_id")],
    "jobs": [("jobs", "id"), ("sources", "last_job_id")],
}

# A citation keeps its document id only if that id still names the file it quoted,
# created before the answer was stored (anything else is a deleted or reused id).
FORGET_STALE_DOCUMENT_IDS = """
UPDATE citations SET document_id = NULL
WHERE document_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM documents d, messages m
    WHERE d.id = citations.document_id AND m.id = citations.message_id
      AND d.filename = citations.filename AND d.created_at <= m.created_at
)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(FORGET_STALE_DOCUMENT_IDS)
        _reference_documents()
        return
    with _foreign_keys_off():
        marks = {t: max(_high_water(cols), _sequence(t)) for t, cols in HIGH_WATER.items()}
        op.execute(FORGET_STALE_DOCUMENT_IDS)
        _reference_documents()
        for table, mark in marks.items():
            _rebuild(table, autoincrement=True)
            _set_sequence(table, max(mark, _sequence(table)))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        _unreference_documents()
        return
    with _foreign_keys_off():
        _unreference_documents()
        for table in HIGH_WATER:
            _rebuild(table, autoincrement=False)
            op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t").bindparams(t=table))


_AUTOINCREMENT = {"sqlite_autoincrement": True}


def _reference_documents() -> None:
    # The rebuild SQLite needs for a new foreign key must keep citations' AUTOINCREMENT.
    with op.batch_alter_table("citations", table_kwargs=_AUTOINCREMENT) as batch_op:
        batch_op.create_index(batch_op.f("ix_citations_document_id"), ["document_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_citations_document_id_documents"),
            "documents",
            ["document_id"],
            ["id"],
            ondelete="SET NULL",
        )


def _unreference_documents() -> None:
    # The rebuild SQLite needs for a new foreign key must keep citations' AUTOINCREMENT.
    with op.batch_alter_table("citations", table_kwargs=_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_citations_document_id_documents"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_citations_document_id"))


@contextmanager
def _foreign_keys_off() -> Iterator[None]:
    """One SQLite transaction with foreign keys off (checked before it commits).

    Rebuilding a table drops it, and dropping a table other rows reference fails with
    foreign keys on; the pragma only takes effect outside a transaction, hence the
    autocommit block and the explicit BEGIN/COMMIT.
    """
    conn = op.get_bind()
    with op.get_context().autocommit_block():
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _rebuild(table: str, *, autoincrement: bool) -> None:
    # SQLite sets AUTOINCREMENT only in CREATE TABLE: copy the rows into a new table.
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def _high_water(columns: list[tuple[str, str]]) -> int:
    conn = op.get_bind()
    found = [conn.exec_driver_sql(f"SELECT max({c}) FROM {t}").scalar() for t, c in columns]
    return max([int(v) for v in found if v is not None], default=0)


def _sequence(table: str) -> int:
    q = sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t").bindparams(t=table)
    return int(op.get_bind().execute(q).scalar() or 0)


def _set_sequence(table: str, value: int) -> None:
    op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t").bindparams(t=table))
    if value:
        op.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :v)").bindparams(
                t=table, v=value
            )
        )
