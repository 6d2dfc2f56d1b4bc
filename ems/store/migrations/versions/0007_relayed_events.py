"""Relayed events live in the store: what the EMS handed to a load controller's own DRLC client.

Before 0007 the dispatcher kept the event it relayed to an SE load controller only in memory, so
after a restart a cancel or an opt-out was not passed on (the device shed until the event's end).
One row per device holding a relayed event: the event as relayed, and when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relayed_events",
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("issuer_event_id", sa.BigInteger, nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("relayed_events")
