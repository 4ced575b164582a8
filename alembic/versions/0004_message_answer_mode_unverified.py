"""message answer mode and unverified sentences

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("unverified", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("unverified")
        batch_op.drop_column("answer_mode")
