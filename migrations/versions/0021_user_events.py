"""user_events, user_event_counters: the per-user event log (replay of missed live events)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

Reviewed by hand: two new tables, nothing rebuilt (no batch mode, so the `tasks`/`tickets` search triggers are
untouched). `user_events` is keyed (user_id, seq); its created_at index serves the retention prune. Both go with
their user (CASCADE).
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_event_counters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_event_counters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_event_counters")),
    )
    op.create_table(
        "user_events",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "seq", name=op.f("pk_user_events")),
    )
    op.create_index("ix_user_events_created_at", "user_events", ["created_at"])


def downgrade():
    op.drop_index("ix_user_events_created_at", table_name="user_events")
    op.drop_table("user_events")
    op.drop_table("user_event_counters")
