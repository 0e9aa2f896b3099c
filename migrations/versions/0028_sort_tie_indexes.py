"""sorts with many equal values: tasks (entity_name, id), (task_type, id) and (task_time, id)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02

Reviewed by hand. `GET /api/tasks?sort_by=task_type` orders by `task_type, id` (every list ends in its id). With an
index on `task_type` alone, PostgreSQL reads the first group of equal task types in full to order it by id: at 1M
tasks with a dozen types, 80,000 rows for a page of 20 (300 ms). The same holds for entity names and for due times
that fall on the same hour. Each single-column index is replaced by one that ends in `id` (it serves everything the
old one did, the old one being its prefix). Plain CREATE/DROP INDEX on both databases, no table rebuild.
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

COLUMNS = ("entity_name", "task_type", "task_time")


def upgrade():
    for column in COLUMNS:
        op.create_index(f"ix_tasks_{column}_id", "tasks", [column, "id"])
        op.drop_index(f"ix_tasks_{column}", table_name="tasks")


def downgrade():
    for column in COLUMNS:
        op.create_index(f"ix_tasks_{column}", "tasks", [column])
        op.drop_index(f"ix_tasks_{column}_id", table_name="tasks")
