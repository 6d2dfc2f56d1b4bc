"""The appliance's identity (IEEE address, device type, install code), the customer's program
preferences (what of the utility's program is shown and delivered, and in which language), and
the self-test's runs (each run writes one: the store's write check, and the results kept).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appliance_identity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ieee", sa.String(23), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("install_code", sa.String(36), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
    )
    op.create_table(
        "program_preferences",
        sa.Column("site", sa.String(80), primary_key=True),
        sa.Column("current_price", sa.Boolean, nullable=False),
        sa.Column("usage_and_demand", sa.Boolean, nullable=False),
        sa.Column("scheduled_prices", sa.Boolean, nullable=False),
        sa.Column("dr_events", sa.Boolean, nullable=False),
        sa.Column("current_tier", sa.Boolean, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("changed_at", _utc(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "selftest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=True),  # None while the run is under way
        sa.Column("checks", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("selftest_runs")
    op.drop_table("program_preferences")
    op.drop_table("appliance_identity")
