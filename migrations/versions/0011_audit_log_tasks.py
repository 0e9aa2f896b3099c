"""audit_log_tasks: which tasks each audit entry is about (a task's activity)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Reviewed by hand: a new table, no change to audit_logs. The backfill links the entries written before it, in three
set-based INSERT … SELECTs: entries about one task (`entity_type` "task", `entity_id`), bulk entries (each id of
`changes.task_ids`) and entries about a comment or attachment (`changes.task_id`). JSON is read with each
database's own functions; SQLite keeps UUIDs as 32 hex digits, so the dashes of the JSON text are dropped there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)

BACKFILL = {
    "postgresql": (
        "SELECT id, entity_id, created_at FROM audit_logs WHERE entity_type = 'task' AND entity_id IS NOT NULL",
        "SELECT DISTINCT audit_logs.id, CAST(ids.value AS uuid), audit_logs.created_at FROM audit_logs"
        " CROSS JOIN LATERAL json_array_elements_text(audit_logs.changes -> 'task_ids') AS ids(value)"
        " WHERE audit_logs.entity_type = 'task' AND audit_logs.entity_id IS NULL"
        " AND json_typeof(audit_logs.changes -> 'task_ids') = 'array'",
        "SELECT id, CAST(changes ->> 'task_id' AS uuid), created_at FROM audit_logs"
        " WHERE entity_type <> 'task' AND changes ->> 'task_id' IS NOT NULL",
    ),
    "sqlite": (
        "SELECT id, entity_id, created_at FROM audit_logs WHERE entity_type = 'task' AND entity_id IS NOT NULL",
        "SELECT DISTINCT audit_logs.id, replace(ids.value, '-', ''), audit_logs.created_at"
        " FROM audit_logs, json_each(audit_logs.changes, '$.task_ids') AS ids"
        " WHERE audit_logs.entity_type = 'task' AND audit_logs.entity_id IS NULL",
        "SELECT id, replace(json_extract(changes, '$.task_id'), '-', ''), created_at FROM audit_logs"
        " WHERE entity_type <> 'task' AND json_extract(changes, '$.task_id') IS NOT NULL",
    ),
}


def upgrade():
    op.create_table(
        "audit_log_tasks",
        sa.Column("audit_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_logs.id"], name=op.f("fk_audit_log_tasks_audit_id_audit_logs")),
        sa.PrimaryKeyConstraint("audit_id", "task_id", name=op.f("pk_audit_log_tasks")),
    )
    op.create_index("ix_audit_log_tasks_task_id_created_at", "audit_log_tasks", ["task_id", "created_at", "audit_id"])
    for select in BACKFILL[op.get_bind().dialect.name]:
        op.execute(f"INSERT INTO audit_log_tasks (audit_id, task_id, created_at) {select}")


def downgrade():
    op.drop_index("ix_audit_log_tasks_task_id_created_at", table_name="audit_log_tasks")
    op.drop_table("audit_log_tasks")
