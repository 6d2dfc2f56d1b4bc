"""Integration settings: OpenADR and MQTT set up on the Commissioning page.

``integration_settings`` keeps, per integration (the ems.yaml section it stands for), the section the
owner or installer saved after it was tried (ems.program_setup); it wins over ems.yaml's. Nothing
existing changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integration_settings",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("section", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integration_settings")
