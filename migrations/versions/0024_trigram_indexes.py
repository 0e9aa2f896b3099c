"""indexes for every documented list filter: pg_trgm for the substring filters, composites for filter + sort pairs

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-02

Reviewed by hand. Two parts:

* Both databases (declared on the models too): `(priority, date_created)` for `?priority=` with the default sort
  (it replaces the single-column `ix_tasks_priority`, its prefix), and `(contact_person_id, task_time)` for an
  assignee's tasks by due time (`?contact_person_id=&sort_by=task_time`); on tickets `created_at` and `updated_at`
  (two sorts, the first the default), `(urgency, created_at)` (the urgency filter) and the two recorded-breach
  columns (the `breached` filter). Plain CREATE/DROP INDEX, no rebuild.
* PostgreSQL only (on SQLite this part does nothing: SQLite has no trigram index, and its LIKE scan is fine at
  embedded sizes). `CREATE EXTENSION IF NOT EXISTS pg_trgm` (a trusted extension since PostgreSQL 13: the database
  owner may create it; before that, a superuser), in `public` when it is not installed yet, so a schema dropped with
  CASCADE never takes it away from another schema's indexes; the operator class is named with the schema the
  extension really lives in. Then GIN `gin_trgm_ops` indexes on every `contains_literal` (ILIKE '%x%') filter of a
  large list: tasks `entity_name` and `task_type`, users `full_name`, `username`, `email` (the directory, project
  member and chat user searches), `messages.content` (chat search), `task_tags.tag` (the tag search). A LIKE/ILIKE
  '%x%' can use a trigram index only when x has at least 3 characters; shorter patterns scan.
  And the enumerated sorts (tasks `sort_by=status|priority`, tickets `sort_by=urgency`, ordered by their declared
  rank through a CASE): btree expression indexes on that CASE and the list's tie-breaker, so a sorted page reads the
  index instead of sorting every row. The CASE must stay the one `finstack.tasks.service._declared_order` and
  `finstack.tickets.service.URGENCY_RANK` render (same values, same order), or the planner no longer matches it.
  And `ix_tasks_active_due` on `CASE WHEN status IN ('open', 'in_progress') THEN task_time END`
  (`Task.active_due()`, the `overdue=true` filter): ANALYZE keeps statistics of an indexed expression, so the planner
  knows how few tasks are overdue (from status and task_time apart it guesses a quarter of the table and scans).
  These indexes are not on the models (`finstack.tasks.search.include_name` keeps them out of the comparison).
  Downgrade drops the indexes and leaves the extension (other schemas or databases' objects may use it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0021"
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


TASK_STATUSES = ("open", "in_progress", "closed", "cancelled")
TICKET_URGENCIES = ("low", "medium", "high", "critical")
# name: (table, the CASE, the tie-breaker of the list's order)
SORT_ORDER_INDEXES = {
    "ix_tasks_status_order": ("tasks", _declared_order("status", TASK_STATUSES), "id"),
    "ix_tasks_priority_order": ("tasks", _declared_order("priority", ("low", "medium", "high")), "id"),
    "ix_tickets_urgency_order": ("tickets", _declared_order("urgency", TICKET_URGENCIES), "number"),
}
# The overdue filter's expression (finstack.tasks.models.Task.active_due): task_time while the task is active.
ACTIVE_DUE = "CASE WHEN status IN ('open', 'in_progress') THEN task_time END"
TICKET_INDEXES = {
    "ix_tickets_created_at": ["created_at"],
    "ix_tickets_updated_at": ["updated_at"],
    "ix_tickets_urgency_created_at": ["urgency", "created_at"],
    "ix_tickets_first_response_breached_at": ["first_response_breached_at"],
    "ix_tickets_resolution_breached_at": ["resolution_breached_at"],
}


def upgrade():
    op.drop_index("ix_tasks_priority", table_name="tasks")
    op.create_index("ix_tasks_priority_date_created", "tasks", ["priority", "date_created"])
    op.create_index("ix_tasks_contact_person_id_task_time", "tasks", ["contact_person_id", "task_time"])
    for name, columns in TICKET_INDEXES.items():
        op.create_index(name, "tickets", columns)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Two databases of one cluster (or two test schemas) migrating at once must not both try to create it.
    bind.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('finstack:pg_trgm'))"))
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if installed is None:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    schema = bind.execute(
        sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
    ).scalar_one()
    for name, (table, column) in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({column} {schema}.gin_trgm_ops)")
    for name, (table, expression, tie_breaker) in SORT_ORDER_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} ({expression}, {tie_breaker})")
    op.execute(f"CREATE INDEX ix_tasks_active_due ON tasks (({ACTIVE_DUE}))")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in ("ix_tasks_active_due", *SORT_ORDER_INDEXES, *TRIGRAM_INDEXES):
            op.execute(f"DROP INDEX {name}")
    for name in TICKET_INDEXES:
        op.drop_index(name, table_name="tickets")
    op.drop_index("ix_tasks_contact_person_id_task_time", table_name="tasks")
    op.drop_index("ix_tasks_priority_date_created", table_name="tasks")
    op.create_index("ix_tasks_priority", "tasks", ["priority"])
