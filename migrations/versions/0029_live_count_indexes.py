"""counts that read an index, not the table: covering partial indexes over live tasks (PostgreSQL)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02

Reviewed by hand. A list's total is a bounded count (`finstack.core.pagination`): up to 10,001 matching rows. For an
assignee, a creator or a due window that count visited one table page per match (at 1M tasks, 5,000 to 10,000 heap
pages: 40 to 50 ms, ten times the 10k figure), because every task list also filters on `deleted_at IS NULL` and, for
a member, on `project_id` (the projects they may read), which the plain indexes do not hold. Partial indexes over live
tasks (`WHERE deleted_at IS NULL`) carrying `project_id` (and `status`) let PostgreSQL count with an index-only scan
(no heap visit on pages VACUUM has marked all-visible):

* `(contact_person_id, task_time) INCLUDE (project_id, status)`: an assignee's list total, and the personal
  dashboard's counts of my active tasks by status, due soon and overdue (and its due-soon / overdue items, in
  due-time order);
* `(created_by) INCLUDE (project_id)`: a creator's list total;
* `(task_time) INCLUDE (project_id)`: the `due_from` / `due_to` window's total.

PostgreSQL only (SQLite has no INCLUDE, and its counts at embedded sizes are cheap); not on the models
(`finstack.tasks.search.include_name` keeps the `_live_count` suffix out of Alembic's comparison). Plain
CREATE/DROP INDEX, no table rebuild.
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tasks_contact_person_id_live_count": "(contact_person_id, task_time) INCLUDE (project_id, status)",
    "ix_tasks_created_by_live_count": "(created_by) INCLUDE (project_id)",
    "ix_tasks_task_time_live_count": "(task_time) INCLUDE (project_id)",
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks {columns} WHERE deleted_at IS NULL")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
