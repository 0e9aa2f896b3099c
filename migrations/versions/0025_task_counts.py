"""task_counts: live tasks by status per dimension (all, type, assignee, creator, project, priority), kept by triggers

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02

Reviewed by hand. `task_counts (dimension, key, status, count)` holds, for every value of each dimension, how many
live tasks (`deleted_at IS NULL`) have each status (finstack.tasks.counts reads it). Database triggers keep it in step
inside the transaction of every write to `tasks`, whatever issues it: the ORM, the set-based UPDATEs of bulk changes,
sweeps, trash, restore and project deletion, the purge's DELETE, the seed's bulk INSERT. A key is the column's text; a
UUID is 32 lower-case hex digits on both databases (SQLite stores it so; PostgreSQL strips the hyphens), NULL is "".

PostgreSQL: statement-level AFTER triggers with transition tables turn a statement's changed rows into deltas summed
per (dimension, key, status) and queue them in `task_count_deltas`, private to the transaction (`xact`) and never
contended (no unique key). A DEFERRABLE INITIALLY DEFERRED constraint trigger on that queue applies the transaction's
deltas once, at COMMIT: one INSERT … ON CONFLICT DO UPDATE in (dimension, key, status) order. So a transaction locks
the hot counter rows only while it commits, and always in one global order: a writer waiting for a counter row holds
no counter row that an earlier key's holder waits for, hence no deadlock, however many statements each transaction
ran. (Transition tables allow no column list, so the UPDATE trigger fires for every UPDATE; it counts only the rows
whose counted columns or liveness changed.) The queue is not in the models (finstack.tasks.search.include_name).

SQLite (one writer at a time): row-level triggers add and subtract straight into `task_counts` with UPSERTs.

The upgrade fills the table from the tasks already there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# A task row's (dimension, key) pairs, as a VALUES list over the row alias `t` (PostgreSQL).
PG_KEYS = """
    (VALUES ('all', ''),
            ('task_type', t.task_type),
            ('contact_person', coalesce(replace(t.contact_person_id::text, '-', ''), '')),
            ('created_by', replace(t.created_by::text, '-', '')),
            ('project', coalesce(replace(t.project_id::text, '-', ''), '')),
            ('priority', t.priority)) AS k (dimension, key)
"""


def _pg_collect(name, rows_sql):
    """A trigger function queueing the deltas of `rows_sql` (columns: the task's counted columns and `delta`)."""
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_count_deltas (dimension, key, status, delta)
        SELECT k.dimension, k.key, t.status, sum(t.delta)
        FROM ({rows_sql}) AS t CROSS JOIN LATERAL {PG_KEYS}
        GROUP BY k.dimension, k.key, t.status
        HAVING sum(t.delta) <> 0;
        RETURN NULL;
    END
    $$
    """


COUNTED = ("status", "task_type", "contact_person_id", "created_by", "project_id", "priority")
COLUMNS = ", ".join(COUNTED)


def _row_of(alias):
    return ", ".join(f"{alias}.{column}" for column in COUNTED)


def _side(alias, delta):
    """One side (old: -1, new: +1) of the changed rows of an UPDATE, named as the task's columns."""
    columns = ", ".join(f"{alias}_{column} AS {column}" for column in COUNTED)
    return f"SELECT {columns}, {delta} AS delta FROM changed WHERE {alias}_live"


# The rows of an UPDATE whose counted columns or liveness changed, old and new side by side.
CHANGED_ROWS = f"""
    WITH changed AS (
        SELECT {", ".join(f"o.{column} AS o_{column}" for column in COUNTED)}, o.deleted_at IS NULL AS o_live,
               {", ".join(f"n.{column} AS n_{column}" for column in COUNTED)}, n.deleted_at IS NULL AS n_live
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE ({_row_of("o")}, o.deleted_at IS NULL) IS DISTINCT FROM ({_row_of("n")}, n.deleted_at IS NULL)
    )
    {_side("o", -1)}
    UNION ALL
    {_side("n", 1)}
"""

POSTGRESQL_UPGRADE = (
    """
    CREATE TABLE task_count_deltas (
        xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
        dimension varchar(16) NOT NULL,
        key varchar(100) NOT NULL,
        status varchar(16) NOT NULL,
        delta integer NOT NULL
    )
    """,
    "CREATE INDEX ix_task_count_deltas_xact ON task_count_deltas (xact)",
    _pg_collect("task_counts_collect_insert", f"SELECT {COLUMNS}, 1 AS delta FROM new_rows WHERE deleted_at IS NULL"),
    _pg_collect("task_counts_collect_delete", f"SELECT {COLUMNS}, -1 AS delta FROM old_rows WHERE deleted_at IS NULL"),
    _pg_collect("task_counts_collect_update", CHANGED_ROWS),
    """
    CREATE FUNCTION task_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        WITH queued AS (
            DELETE FROM task_count_deltas WHERE xact = pg_current_xact_id() RETURNING dimension, key, status, delta
        )
        INSERT INTO task_counts AS c (dimension, key, status, count)
        SELECT dimension, key, status, sum(delta) FROM queued
        GROUP BY dimension, key, status
        HAVING sum(delta) <> 0
        ORDER BY dimension, key, status
        ON CONFLICT (dimension, key, status) DO UPDATE SET count = c.count + excluded.count;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_collect_insert()
    """,
    """
    CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_collect_delete()
    """,
    """
    CREATE TRIGGER task_counts_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_collect_update()
    """,
    """
    CREATE CONSTRAINT TRIGGER task_counts_apply AFTER INSERT ON task_count_deltas
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION task_counts_apply()
    """,
)

POSTGRESQL_DOWNGRADE = (
    "DROP TRIGGER task_counts_apply ON task_count_deltas",
    "DROP TRIGGER task_counts_update ON tasks",
    "DROP TRIGGER task_counts_delete ON tasks",
    "DROP TRIGGER task_counts_insert ON tasks",
    "DROP FUNCTION task_counts_apply()",
    "DROP FUNCTION task_counts_collect_update()",
    "DROP FUNCTION task_counts_collect_delete()",
    "DROP FUNCTION task_counts_collect_insert()",
    "DROP TABLE task_count_deltas",
)


def _sqlite_keys(row):
    """A task row's (dimension, key) pairs as SELECT arms over `row` (new or old) (SQLite)."""
    pairs = (
        ("'all' AS dimension", "'' AS key"),  # SQLite names a subquery's columns after its first arm
        ("'task_type'", f"{row}.task_type"),
        ("'contact_person'", f"coalesce({row}.contact_person_id, '')"),
        ("'created_by'", f"{row}.created_by"),
        ("'project'", f"coalesce({row}.project_id, '')"),
        ("'priority'", f"{row}.priority"),
    )
    return " UNION ALL ".join(f"SELECT {dimension}, {key}" for dimension, key in pairs)


def _sqlite_add(row, delta):
    """Add `delta` to the counters of `row` when it is live. The WHERE also keeps SQLite's UPSERT parser happy."""
    return f"""
        INSERT INTO task_counts (dimension, key, status, count)
        SELECT k.dimension, k.key, {row}.status, {delta} FROM ({_sqlite_keys(row)}) AS k
        WHERE {row}.deleted_at IS NULL
        ON CONFLICT (dimension, key, status) DO UPDATE SET count = count + excluded.count;
    """


SQLITE_UPGRADE = (
    f"CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN {_sqlite_add('new', 1)} END",
    f"CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN {_sqlite_add('old', -1)} END",
    f"""
    CREATE TRIGGER task_counts_update AFTER UPDATE OF {COLUMNS}, deleted_at ON tasks
    WHEN ({_row_of("old")}, old.deleted_at IS NULL) IS NOT ({_row_of("new")}, new.deleted_at IS NULL)
    BEGIN {_sqlite_add("old", -1)} {_sqlite_add("new", 1)} END
    """,
)

SQLITE_DOWNGRADE = (
    "DROP TRIGGER task_counts_update",
    "DROP TRIGGER task_counts_delete",
    "DROP TRIGGER task_counts_insert",
)


def _fill():
    """The counts of the tasks already there (one GROUP BY per dimension)."""
    uuid_key = "replace(CAST({} AS VARCHAR), '-', '')"
    keys = (
        ("all", "''"),
        ("task_type", "task_type"),
        ("contact_person", f"coalesce({uuid_key.format('contact_person_id')}, '')"),
        ("created_by", uuid_key.format("created_by")),
        ("project", f"coalesce({uuid_key.format('project_id')}, '')"),
        ("priority", "priority"),
    )
    for dimension, key in keys:
        grouped_by = "status" if dimension == "all" else f"{key}, status"  # PostgreSQL: no GROUP BY ''
        op.execute(
            f"INSERT INTO task_counts (dimension, key, status, count) "
            f"SELECT '{dimension}', {key}, status, count(*) FROM tasks WHERE deleted_at IS NULL GROUP BY {grouped_by}"
        )


def _run(statements):
    for statement in statements:
        op.execute(statement)


def _on_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "task_counts",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "dimension IN ('all', 'task_type', 'contact_person', 'created_by', 'project', 'priority')",
            name=op.f("ck_task_counts_dimension"),
        ),
        sa.PrimaryKeyConstraint("dimension", "key", "status", name=op.f("pk_task_counts")),
    )
    _fill()
    _run(POSTGRESQL_UPGRADE if _on_postgresql() else SQLITE_UPGRADE)


def downgrade():
    _run(POSTGRESQL_DOWNGRADE if _on_postgresql() else SQLITE_DOWNGRADE)
    op.drop_table("task_counts")
