"""reminders, recurring tasks and the user's time zone

Revision ID: 0022
Revises: 0016
Create Date: 2026-12-02

Reviewed by hand. `tasks` only gains columns (plain ADD COLUMN, no batch rebuild: a rebuild on SQLite would drop
the search triggers of 0010), all nullable, so existing rows need no backfill: they are not recurring. The unique
index on (series_id, occurrence) is what makes two concurrent closes create one next occurrence; rows with NULLs
(every task that is not recurring) never collide. `users.timezone` is NOT NULL with the server default 'UTC', which
fills existing rows. `task_reminders` is new; its (sent_at, remind_at) index serves the reminder sweep. The
downgrade drops the indexes first (SQLite refuses to drop an indexed column) and then the columns with plain DROP
COLUMN (SQLite 3.35+), again without rebuilding `tasks`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0016"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("users", sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False))
    op.add_column("tasks", sa.Column("repeat", sa.JSON(), nullable=True))
    op.add_column("tasks", sa.Column("series_id", sa.Uuid(), nullable=True))
    op.add_column("tasks", sa.Column("occurrence", sa.Integer(), nullable=True))
    op.create_index("uq_tasks_series_id_occurrence", "tasks", ["series_id", "occurrence"], unique=True)
    op.create_table(
        "task_reminders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("before_minutes", sa.Integer(), nullable=True),
        sa.Column("remind_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("kind IN ('relative', 'absolute')", name=op.f("ck_task_reminders_kind")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_reminders_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_reminders")),
    )
    op.create_index("ix_task_reminders_sent_at_remind_at", "task_reminders", ["sent_at", "remind_at"])
    op.create_index(op.f("ix_task_reminders_task_id"), "task_reminders", ["task_id"])


def downgrade():
    op.drop_index(op.f("ix_task_reminders_task_id"), table_name="task_reminders")
    op.drop_index("ix_task_reminders_sent_at_remind_at", table_name="task_reminders")
    op.drop_table("task_reminders")
    op.drop_index("uq_tasks_series_id_occurrence", table_name="tasks")
    op.drop_column("tasks", "occurrence")
    op.drop_column("tasks", "series_id")
    op.drop_column("tasks", "repeat")
    op.drop_column("users", "timezone")
