"""The home's devices, their readings and control; DR participation; languages.

Adds the devices the EMS found on its own network, their readings (telemetry), the log of
every command sent to them, the state a device was in before the EMS changed it (so that a
restart still restores it), the customer's opt-outs per event and per device, a language per
user, and a translatable template for messages the EMS makes itself.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("template", sa.String(255), nullable=True))
        batch.add_column(sa.Column("params", sa.JSON, nullable=True))
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_class", sa.Integer, nullable=False),
        sa.Column("enrollment_group", sa.Integer, nullable=False),
        sa.Column("nominal_kw", sa.Float, nullable=True),
        sa.Column("min_setpoint_c", sa.Float, nullable=True),
        sa.Column("max_setpoint_c", sa.Float, nullable=True),
        sa.Column("capacity_kwh", sa.Float, nullable=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("discovered_at", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=True),
    )
    op.create_table(
        "device_readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("power_kw", sa.Float, nullable=True),
        sa.Column("on", sa.Boolean, nullable=True),
        sa.Column("indoor_c", sa.Float, nullable=True),
        sa.Column("outdoor_c", sa.Float, nullable=True),
        sa.Column("cooling_setpoint_c", sa.Float, nullable=True),
        sa.Column("heating_setpoint_c", sa.Float, nullable=True),
        sa.Column("system_mode", sa.String(16), nullable=True),
        sa.Column("soc_pct", sa.Float, nullable=True),
    )
    op.create_index("ix_device_readings_device_at", "device_readings", ["device_id", "at"])
    op.create_index("ix_device_readings_at", "device_readings", ["at"])
    op.create_table(
        "device_commands",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_device_commands_at", "device_commands", ["at"])
    op.create_table(
        "controlled_devices",
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("original", sa.JSON, nullable=False),
        sa.Column("since", _utc(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
    )
    op.create_table(
        "dr_participation",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("issuer_event_id", sa.BigInteger, primary_key=True),
        sa.Column("device_id", sa.String(32), primary_key=True),  # "" is the whole event
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("changed_at", _utc(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("dr_participation", "controlled_devices", "device_commands", "device_readings", "devices"):
        op.drop_table(table)
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("params")
        batch.drop_column("template")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
