"""Outbox retry bookkeeping (attempts, next attempt, last error) and message read/answer.

With 0001 a failing upstream sender was retried blindly on every pass; these columns let the
outbox back off per item and show why an item is stuck. Messages gain the customer's "read"
mark and the answer of an enhanced confirmation. Existing rows get attempts 0 and unread.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): SQLite does it in place, inside the transaction.
    op.add_column("outbox", sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("last_error", sa.Text, nullable=True))
    op.add_column("messages", sa.Column("confirmation_answer", sa.String(16), nullable=True))
    op.add_column("messages", sa.Column("read", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("read")
        batch.drop_column("confirmation_answer")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
