"""notifications: a collapse count, and per-user delivery settings (mode, chat groups, last digest)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02

Reviewed by hand: `notifications.count` is NOT NULL with a server default of 1 (every existing row is one
notification), added with a plain ADD COLUMN on both databases (no table rebuild). `notification_settings` holds one
optional row per user (no row: immediate mail, no group-chat notifications); it goes with its user (CASCADE).
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("notifications", sa.Column("count", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_mode", sa.String(length=16), nullable=False),
        sa.Column("chat_group", sa.Boolean(), nullable=False),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "delivery_mode IN ('immediate', 'hourly', 'daily', 'off')",
            name=op.f("ck_notification_settings_delivery_mode"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notification_settings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
    )


def downgrade():
    op.drop_table("notification_settings")
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("count")
