"""Outbox routes per meter: each row names the meter whose upstream channel carries it.

Before 0005 the outbox had one queue per kind of report, so one meter's outage held every
meter's reports. The new ``meter_id`` column is the row's route (with its kind); it is None for a
premise-wide item (device telemetry). Existing rows take the meter id their report carries, so
what was pending before the upgrade goes out on its meter's route after it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OUTBOX = sa.table(
    "outbox", sa.column("id", sa.Integer), sa.column("payload", sa.JSON), sa.column("meter_id", sa.String)
)


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): SQLite does it in place, inside the transaction.
    op.add_column("outbox", sa.Column("meter_id", sa.String(64), nullable=True))
    conn = op.get_bind()
    for row_id, payload in conn.execute(sa.select(_OUTBOX.c.id, _OUTBOX.c.payload)).all():
        fields = payload.get("fields") if isinstance(payload, dict) else None
        meter_id = fields.get("meter_id") if isinstance(fields, dict) else None
        if isinstance(meter_id, str):
            conn.execute(sa.update(_OUTBOX).where(_OUTBOX.c.id == row_id).values(meter_id=meter_id))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("meter_id")
