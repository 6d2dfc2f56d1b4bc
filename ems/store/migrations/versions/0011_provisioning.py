"""Provisioning the home's devices: the log of every step and what each device was given (UC134).

``provisioning_log`` keeps every device interaction during installation and provisioning (stage,
message, result, in words for the installer; I1FR47). ``provisioned_devices`` keeps the customer's
choices for each home device (name, location, program) and the device's acknowledgement and
readiness (I1FR41, I1FR44). Nothing existing changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provisioning_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("message", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_provisioning_log_device_at", "provisioning_log", ["device_id", "at"])
    op.create_table(
        "provisioned_devices",
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("location", sa.String(128), nullable=False),
        sa.Column("program", sa.String(64), nullable=True),
        sa.Column("enrollment_group", sa.Integer, nullable=True),
        sa.Column("device_class", sa.Integer, nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("readiness", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provisioned_devices")
    op.drop_index("ix_provisioning_log_device_at", table_name="provisioning_log")
    op.drop_table("provisioning_log")
