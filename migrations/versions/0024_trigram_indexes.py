"""indexes for every documented list filter: pg_trgm for the substring filters, composites for filter + sort pairs

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02

Reviewed by hand. Two parts:

* Both databases (declared on the models too): `(priority, date_created)` for `?priority=` with the default sort
  (it replaces the single-column `ix_tasks_priority`, its prefix), and `(contact_person_id, task_time)` for an
  assignee's tasks by due time (`?contact_person_id=&sort_by=task_time`). Plain CREATE/DROP INDEX, no rebuild.
* PostgreSQL only (on SQLite this part does nothing: SQLite has no trigram index, and its LIKE scan is fine at
  embedded sizes). `CREATE EXTENSION IF NOT EXISTS pg_trgm` (a trusted extension since PostgreSQL 13: the database
  owner may create it; before that, a superuser), in `public` when it is not installed yet, so a schema dropped with
  CASCADE never takes it away from another schema's indexes; the operator class is named with the schema the
  extension really lives in. Then GIN `gin_trgm_ops` indexes on every `contains_literal` (ILIKE '%x%') filter of a
  large list: tasks `entity_name` and `task_type`, users `full_name`, `username`, `email` (the directory, project
  member and chat user searches), `messages.content` (chat search), `task_tags.tag` (the tag search). A LIKE/ILIKE
  '%x%' can use a trigram index only when x has at least 3 characters; shorter patterns scan.
  And the two enumerated sorts (`sort_by=status|priority`, ordered by their declared rank through a CASE): btree
  expression indexes on that CASE and `id`, so a sorted page reads the index instead of sorting every task. The
  CASE text must stay the one `finstack.tasks.service._declared_order` renders, or the planner no longer matches it.
  These indexes are not on the models (`finstack.tasks.search.include_name` keeps them out of the comparison).
  Downgrade drops the indexes and leaves the extension (other schemas or databases' objects may use it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {
    "ix_tasks_entity_name_trgm": ("tasks", "entity_name"),
    "ix_tasks_task_type_trgm": ("tasks", "task_type"),
    "ix_users_full_name_trgm": ("users", "full_name"),
    "ix_users_username_trgm": ("users", "username"),
    "ix_users_email_trgm": ("users", "email"),
    "ix_messages_content_trgm": ("messages", "content"),
    "ix_task_tags_tag_trgm": ("task_tags", "tag"),
}


def _declared_order(column, values):
    whens = " ".join(f"WHEN '{value}' THEN {rank}" for rank, value in enumerate(values))
    return f"(CASE {column} {whens} END)"


SORT_ORDER_INDEXES = {
    "ix_tasks_status_order": _declared_order("status", ("open", "in_progress", "closed", "cancelled")),
    "ix_tasks_priority_order": _declared_order("priority", ("low", "medium", "high")),
}


def upgrade():
    op.drop_index("ix_tasks_priority", table_name="tasks")
    op.create_index("ix_tasks_priority_date_created", "tasks", ["priority", "date_created"])
    op.create_index("ix_tasks_contact_person_id_task_time", "tasks", ["contact_person_id", "task_time"])
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if installed is None:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    schema = bind.execute(
        sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
    ).scalar_one()
    for name, (table, column) in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} {schema}.gin_trgm_ops)")
    for name, expression in SORT_ORDER_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks ({expression}, id)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in (*SORT_ORDER_INDEXES, *TRIGRAM_INDEXES):
            op.execute(f"DROP INDEX {name}")
    op.drop_index("ix_tasks_contact_person_id_task_time", table_name="tasks")
    op.drop_index("ix_tasks_priority_date_created", table_name="tasks")
    op.create_index("ix_tasks_priority", "tasks", ["priority"])
