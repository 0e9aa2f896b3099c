"""task trash: tasks.deleted_at, tasks.deleted_by

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Reviewed by hand: two nullable columns, so existing tasks stay live; batch mode rebuilds the table on SQLite to
add the foreign key. The index on deleted_at serves the trash listing and the purge (oldest first).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("deleted_by", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_tasks_deleted_by_users"), "users", ["deleted_by"], ["id"])
        batch_op.create_index("ix_tasks_deleted_at", ["deleted_at"])


def downgrade():
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_index("ix_tasks_deleted_at")
        batch_op.drop_constraint(op.f("fk_tasks_deleted_by_users"), type_="foreignkey")
        batch_op.drop_column("deleted_by")
        batch_op.drop_column("deleted_at")
