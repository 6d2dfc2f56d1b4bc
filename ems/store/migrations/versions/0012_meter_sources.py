"""Meter pins and sources: which meter each meter id reads, and through what.

``meter_pins`` keeps, per meter id, the kind of source and the meter's hardware id (MAC, EUI-64 or
2030.5 LFDI) first read, and a different meter that answered since, waiting for the owner
(ems.meter_source). ``meter_sources`` keeps the sources set up on the Commissioning page (a
Rainforest bridge, a 2030.5 meter), started over ems.yaml's. Nothing existing changes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_pins",
        sa.Column("meter_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hardware_id", sa.String(64), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_hardware_id", sa.String(64), nullable=True),
        sa.Column("pending_at", sa.DateTime(timezone=True), nullable=True),
    )


    op.create_table(
        "meter_sources",
        sa.Column("meter_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meter_sources")
    op.drop_table("meter_pins")
