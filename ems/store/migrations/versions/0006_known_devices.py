"""Known devices: the browsers a user has signed in from, so a stranger's failures cannot lock them out.

Before 0006 five wrong passwords locked a user name for everyone for 15 minutes, so anyone on the
network could keep the owner out. A successful sign-in now leaves a long-lived random cookie in
the browser; only its SHA-256 digest is stored here, with the user it belongs to. A browser that
presents it is not held by the name's lock (its own per-client backoff still applies).
Nothing existing changes: every browser is unknown until its next sign-in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_devices",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_known_devices_user_id", "known_devices", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_known_devices_user_id", table_name="known_devices")
    op.drop_table("known_devices")
