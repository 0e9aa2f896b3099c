"""SLA sweep: partial indexes over the breaches not recorded yet

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02

Reviewed by hand. The SLA sweep claims SLA_SWEEP_CHUNK unrecorded breaches per kind per transaction through
`(status, *_due_at)`, whose entries keep the breaches it stamped: each claim walked past every breach recorded before
it (at 1M tickets, 16 claims took 10.6 s), and the resolution claim, whose `resolution_due_at < coalesce(sla_paused_at,
now)` no index range serves, was planned as a scan of the table. These indexes hold only the active tickets whose
stamp is still empty (and, for the first response, not responded to), in due order: a stamped ticket leaves them with
its claim, and PostgreSQL proves the claim's `status IN (…)` against the predicate (the values arrive as literals).
Plain CREATE INDEX … WHERE on both databases (SQLite has partial indexes too), no table rebuild.
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('open', 'assigned', 'in_progress', 'waiting_on_requester')"  # tickets.models.ACTIVE_STATUSES
INDEXES = {
    "ix_tickets_unrecorded_first_response": (
        "first_response_due_at",
        f"first_response_breached_at IS NULL AND first_responded_at IS NULL AND {ACTIVE}",
    ),
    "ix_tickets_unrecorded_resolution": ("resolution_due_at", f"resolution_breached_at IS NULL AND {ACTIVE}"),
}


def upgrade():
    for name, (column, where) in INDEXES.items():
        op.create_index(name, "tickets", [column], postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
