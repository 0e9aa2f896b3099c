"""helpdesk: misuse_reports (the misuse sweep's findings, one per user per day)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

Reviewed by hand: one new table. The unique (user_id, day) is what makes the sweep idempotent and safe twice at once
(INSERT … ON CONFLICT DO NOTHING). Reports go with their user (CASCADE); a deleted reviewer leaves the review
(SET NULL).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "misuse_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("ticket_count", sa.Integer(), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("action IN ('none', 'warn', 'suspend')", name=op.f("ck_misuse_reports_action")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_misuse_reports_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_misuse_reports_reviewed_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_misuse_reports")),
        sa.UniqueConstraint("user_id", "day", name=op.f("uq_misuse_reports_user_id_day")),
    )
    op.create_index("ix_misuse_reports_day", "misuse_reports", ["day"])


def downgrade():
    op.drop_table("misuse_reports")
