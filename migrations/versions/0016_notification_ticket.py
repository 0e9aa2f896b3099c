"""notifications: ticket_id (a notification may concern a helpdesk ticket)

Revision ID: 0016
Revises: 0019
Create Date: 2026-12-02

Reviewed by hand: one nullable column (existing notifications concern no ticket), its foreign key (a notification
goes with its ticket: CASCADE) and an index, which the cascade needs to find the rows. Batch mode keeps it runnable
on SQLite; the table rebuilt there is `notifications`, which has no triggers.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("ticket_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_notifications_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_notifications_ticket_id", ["ticket_id"])


def downgrade():
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_index("ix_notifications_ticket_id")
        batch_op.drop_constraint(op.f("fk_notifications_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_column("ticket_id")
