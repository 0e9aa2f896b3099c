"""SLA sweep: partial indexes over the breaches not recorded yet

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02

Reviewed by hand. The SLA sweep claims SLA_SWEEP_CHUNK unrecorded breaches per kind per transaction through
`(status, *_due_at)`, whose entries keep the breaches it stamped: each claim walked past every breach recorded before
it (at 1M tickets, 16 claims took 10.6 s). These indexes hold only the tickets whose stamp is still empty (and, for the
first response, not responded to), so a stamped ticket leaves them with its claim. Plain CREATE INDEX … WHERE on both
databases (SQLite has partial indexes too), no table rebuild.
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tickets_unrecorded_first_response": (
        "first_response_due_at",
        "first_response_breached_at IS NULL AND first_responded_at IS NULL",
    ),
    "ix_tickets_unrecorded_resolution": ("resolution_due_at", "resolution_breached_at IS NULL"),
}


def upgrade():
    for name, (column, where) in INDEXES.items():
        op.create_index(
            name, "tickets", ["status", column], postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
