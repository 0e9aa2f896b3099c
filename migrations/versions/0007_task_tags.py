"""task tags: task_tags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Reviewed by hand: a new table only, plain SQLAlchemy types, so it runs alike on SQLite and PostgreSQL. A task's
tags go with it (ON DELETE CASCADE); the primary key (task_id, tag) serves a task's tags, the index (tag, task_id)
the tag filter and the tag counts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "task_tags",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_task_tags_task_id_tasks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "tag", name=op.f("pk_task_tags")),
    )
    op.create_index("ix_task_tags_tag_task_id", "task_tags", ["tag", "task_id"])


def downgrade():
    op.drop_index("ix_task_tags_tag_task_id", table_name="task_tags")
    op.drop_table("task_tags")
