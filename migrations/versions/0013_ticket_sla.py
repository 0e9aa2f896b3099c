"""ticket SLA: due dates, first response, pause and breach stamps on tickets

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Reviewed by hand: six nullable columns (existing tickets get no clock; `flask tickets sweep-sla` ignores tickets
without due dates) and two indexes for the sweep's scans. Batch mode keeps it runnable on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
COLUMNS = (
    "first_response_due_at",
    "resolution_due_at",
    "first_responded_at",
    "sla_paused_at",
    "first_response_breached_at",
    "resolution_breached_at",
)


def upgrade():
    with op.batch_alter_table("tickets") as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, TIMESTAMP, nullable=True))
        batch_op.create_index("ix_tickets_status_first_response_due_at", ["status", "first_response_due_at"])
        batch_op.create_index("ix_tickets_status_resolution_due_at", ["status", "resolution_due_at"])


def downgrade():
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.drop_index("ix_tickets_status_resolution_due_at")
        batch_op.drop_index("ix_tickets_status_first_response_due_at")
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
