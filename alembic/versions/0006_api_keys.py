"""API keys, and the key each conversation belongs to

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 06:00:00.000000

`conversations.key_id` is added in place (no batch rebuild), so SQLite keeps the table's
AUTOINCREMENT; existing conversations have no key and are seen only with auth off.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("collections", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sqlite_autoincrement=True,
    )
    op.add_column("conversations", sa.Column("key_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_conversations_key_id"), "conversations", ["key_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_key_id"), table_name="conversations")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place, keeping AUTOINCREMENT.
        op.execute("ALTER TABLE conversations DROP COLUMN key_id")
    else:
        op.drop_column("conversations", "key_id")
    op.drop_table("api_keys")
