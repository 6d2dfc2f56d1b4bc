"""Initial schema: meters, readings, prices, messages, DR events, status reports, outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meters",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("ieee", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.Integer, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("multiplier", sa.Integer, nullable=False),
        sa.Column("divisor", sa.Integer, nullable=False),
        sa.Column("summation_decimals", sa.Integer, nullable=False),
        sa.Column("demand_decimals", sa.Integer, nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("discovered_at", _utc(), nullable=False),
        sa.Column("last_seen", _utc(), nullable=False),
    )
    op.create_table(
        "interval_readings",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("start", _utc(), primary_key=True),
        sa.Column("duration_s", sa.Integer, primary_key=True),
        sa.Column("consumed_kwh", sa.Float, nullable=False),
        sa.Column("generated_kwh", sa.Float, nullable=False),
    )
    op.create_table(
        "demand_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("demand_kw", sa.Float, nullable=False),
    )
    op.create_index("ix_demand_samples_meter_at", "demand_samples", ["meter_id", "at"])
    op.create_table(
        "register_readings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("summation_delivered_kwh", sa.Float, nullable=True),
        sa.Column("summation_received_kwh", sa.Float, nullable=True),
    )
    op.create_index("ix_register_readings_meter_at", "register_readings", ["meter_id", "at"])
    op.create_table(
        "price_signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.BigInteger, nullable=False),
        sa.Column("issuer_event_id", sa.BigInteger, nullable=False),
        sa.Column("rate_label", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("price_per_kwh", sa.Float, nullable=False),
        sa.Column("start", _utc(), nullable=False),
        sa.Column("end", _utc(), nullable=True),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("number_of_tiers", sa.Integer, nullable=False),
        sa.Column("register_tier", sa.Integer, nullable=False),
        sa.Column("generation_price_per_kwh", sa.Float, nullable=True),
        sa.Column("price_ratio", sa.Float, nullable=True),
        sa.Column("block_thresholds", sa.Integer, nullable=True),
        sa.Column("received_at", _utc(), nullable=False),
        sa.UniqueConstraint("meter_id", "issuer_event_id", name="uq_price_signals_event"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("importance", sa.Integer, nullable=False),
        sa.Column("start", _utc(), nullable=False),
        sa.Column("end", _utc(), nullable=True),
        sa.Column("confirmation_required", sa.Boolean, nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("enhanced_confirmation", sa.Boolean, nullable=False),
        sa.Column("cancelled_at", _utc(), nullable=True),
        sa.Column("confirmed_at", _utc(), nullable=True),
        sa.UniqueConstraint("meter_id", "message_id", name="uq_messages_message"),
    )
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_table(
        "dr_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("issuer_event_id", sa.BigInteger, nullable=False),
        sa.Column("device_class", sa.Integer, nullable=False),
        sa.Column("enrollment_group", sa.Integer, nullable=False),
        sa.Column("start", _utc(), nullable=False),
        sa.Column("duration_min", sa.Integer, nullable=False),
        sa.Column("end_at", _utc(), nullable=False),
        sa.Column("criticality", sa.Integer, nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("cooling_offset_c", sa.Float, nullable=True),
        sa.Column("heating_offset_c", sa.Float, nullable=True),
        sa.Column("cooling_setpoint_c", sa.Float, nullable=True),
        sa.Column("heating_setpoint_c", sa.Float, nullable=True),
        sa.Column("average_load_adjustment_pct", sa.Integer, nullable=True),
        sa.Column("duty_cycle_pct", sa.Integer, nullable=True),
        sa.Column("randomize_start", sa.Boolean, nullable=False),
        sa.Column("randomize_end", sa.Boolean, nullable=False),
        sa.Column("cancelled_at", _utc(), nullable=True),
        sa.UniqueConstraint("meter_id", "issuer_event_id", name="uq_dr_events_event"),
    )
    op.create_index("ix_dr_events_end_at", "dr_events", ["end_at"])
    op.create_table(
        "event_status_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("issuer_event_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("criticality_applied", sa.Integer, nullable=False),
        sa.Column("cooling_setpoint_applied_c", sa.Float, nullable=True),
        sa.Column("heating_setpoint_applied_c", sa.Float, nullable=True),
        sa.Column("average_load_adjustment_applied_pct", sa.Integer, nullable=True),
        sa.Column("duty_cycle_applied_pct", sa.Integer, nullable=True),
        sa.Column("event_control", sa.Integer, nullable=False),
    )
    op.create_index("ix_event_status_reports_event", "event_status_reports", ["issuer_event_id", "at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("delivered_at", _utc(), nullable=True),
    )
    op.create_index("ix_outbox_delivered_at", "outbox", ["delivered_at"])


def downgrade() -> None:
    for table in (
        "outbox",
        "event_status_reports",
        "dr_events",
        "messages",
        "price_signals",
        "register_readings",
        "demand_samples",
        "interval_readings",
        "meters",
    ):
        op.drop_table(table)
