"""An outbox item keeps the id its first attempt went out under, so every retry reuses it.

Before 0008 the TSN a report's first attempt used lived only in memory: a report sent just before a
power loss, and not yet marked delivered, went out again after the restart under a new TSN, and
the meter could not tell the retry from a second report (issue 11: a confirmation, a status twice).
The upstream channel names the id (a ZCL TSN on the HAN) before the frame leaves; NULL until then.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("wire_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("wire_id")
