"""task_counts by due day: the dimensions due_day and project_due_day, kept by the triggers of 0025 extended

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-02

Reviewed by hand. Two more dimensions of `task_counts`, so that the overdue tasks of everyone and of a project are read
from a few maintained rows (finstack.tasks.counts.with_overdue) instead of counting the upcoming tasks live, which
the seeded planning horizon (half the active tasks) made a sequential scan of `tasks`:

- `due_day`: key the UTC calendar day of `task_time`, 'YYYY-MM-DD';
- `project_due_day`: key '<project key>:<day>' (the project's key as in `project`: 32 hex digits, "" for none).

Counted by status like the others, live tasks only. The triggers of 0025 keep their design (PostgreSQL: statement-
level collection into the transaction's private queue `task_count_deltas`, applied once at COMMIT in key order; SQLite:
row-level UPSERTs); only the keys a task row yields grow by these two, and an UPDATE now also counts the rows whose
due day changed. PostgreSQL replaces the three collecting functions and the applying one (the triggers stay; the
apply now skips its redundant firings cheaply, see `_pg_apply`); SQLite recreates its three triggers. The upgrade
takes the lock CREATE TRIGGER takes on `tasks` (writers wait, readers go on) before filling the new rows from the
tasks already there, so no write falls between the fill and the new functions. The downgrade restores 0025's
functions or triggers and deletes the new rows.

And `ix_tasks_active_live_task_time`: (task_time, project_id) of the live active tasks (a partial index), so the part
of the overdue still counted live, today's tasks due before now, is an index-only count of a day's tasks at most
(at 1M tasks the index on (status, task_time) found them but visited ~2,500 heap pages: 90 ms).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None

DIMENSIONS_0025 = ("all", "task_type", "contact_person", "created_by", "project", "priority")
DIMENSIONS = (*DIMENSIONS_0025, "due_day", "project_due_day")
NEW_DIMENSIONS = ", ".join(f"'{dimension}'" for dimension in DIMENSIONS[len(DIMENSIONS_0025) :])
COUNTED = ("status", "task_type", "contact_person_id", "created_by", "project_id", "priority")
INDEX = "ix_tasks_active_live_task_time"
QUEUED = "finstack.task_counts_queued"  # a transaction-local setting: 'yes' while deltas wait in the queue
ACTIVE_LIVE = sa.text("deleted_at IS NULL AND status IN ('open', 'in_progress')")
DAY = {
    "postgresql": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "sqlite": "date({})",  # SQLite keeps task_time as naive UTC ISO text
}


def _check(dimensions):
    return "dimension IN ({})".format(", ".join(f"'{dimension}'" for dimension in dimensions))


# PostgreSQL. The trigger functions of 0025 (`days` False) and of this revision (`days` True): the same text but for
# the due day, an extra counted value computed from the row (`due_day`) and two more (dimension, key) pairs.


def _pg_counted(alias, days):
    """{name: SQL} of a task row's counted values."""
    counted = {column: f"{alias}.{column}" for column in COUNTED}
    if days:
        counted["due_day"] = DAY["postgresql"].format(f"{alias}.task_time")
    return counted


def _pg_keys(days):
    """A task row's (dimension, key) pairs, as a VALUES list over the row alias `t` (its counted values)."""
    pairs = [
        "('all', '')",
        "('task_type', t.task_type)",
        "('contact_person', coalesce(replace(t.contact_person_id::text, '-', ''), ''))",
        "('created_by', replace(t.created_by::text, '-', ''))",
        "('project', coalesce(replace(t.project_id::text, '-', ''), ''))",
        "('priority', t.priority)",
    ]
    if days:
        pairs += [
            "('due_day', t.due_day)",
            "('project_due_day', coalesce(replace(t.project_id::text, '-', ''), '') || ':' || t.due_day)",
        ]
    return "(VALUES {}) AS k (dimension, key)".format(", ".join(pairs))


def _pg_collect(name, rows_sql, days):
    """The trigger function queueing the deltas of `rows_sql` (columns: the counted values and `delta`); this
    revision's also flags the queue as holding deltas (`_pg_apply`), before queuing them: with the apply made
    immediate (SET CONSTRAINTS), it fires at the end of this INSERT."""
    flag = f"PERFORM set_config('{QUEUED}', 'yes', true);" if days else ""
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {flag}
        INSERT INTO task_count_deltas (dimension, key, status, delta)
        SELECT k.dimension, k.key, t.status, sum(t.delta)
        FROM ({rows_sql}) AS t CROSS JOIN LATERAL {_pg_keys(days)}
        GROUP BY k.dimension, k.key, t.status
        HAVING sum(t.delta) <> 0;
        RETURN NULL;
    END
    $$
    """


def _pg_apply(days):
    """The function of the deferred constraint trigger, which fires once per queued delta row: the first firing
    applies the transaction's queue. In 0025 every later firing looked for queued rows again, through the index entries
    of all the rows deleted by the first, so a COMMIT cost the square of its queued rows (10,000 tasks changed in one
    statement, 4,400 deltas: 1.8 s at 100k tasks); here a transaction-local setting, set by the collecting functions
    and cleared by the apply (both undone with a rolled-back savepoint, as the queue is), lets them return at once."""
    skip = f"IF current_setting('{QUEUED}', true) IS DISTINCT FROM 'yes' THEN RETURN NULL; END IF;" if days else ""
    applied = f"PERFORM set_config('{QUEUED}', 'no', true);" if days else ""
    return f"""
    CREATE OR REPLACE FUNCTION task_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {skip}
        WITH queued AS (
            DELETE FROM task_count_deltas WHERE xact = pg_current_xact_id() RETURNING dimension, key, status, delta
        )
        INSERT INTO task_counts AS c (dimension, key, status, count)
        SELECT dimension, key, status, sum(delta) FROM queued
        GROUP BY dimension, key, status
        HAVING sum(delta) <> 0
        ORDER BY dimension, key, status
        ON CONFLICT (dimension, key, status) DO UPDATE SET count = c.count + excluded.count;
        {applied}
        RETURN NULL;
    END
    $$
    """


def _pg_rows(transition, delta, days):
    values = ", ".join(f"{sql} AS {name}" for name, sql in _pg_counted("r", days).items())
    return f"SELECT {values}, {delta} AS delta FROM {transition} r WHERE r.deleted_at IS NULL"


def _pg_changed(days):
    """The rows of an UPDATE whose counted values or liveness changed, old and new side by side, as two sides
    (old: -1, new: +1)."""
    old, new = _pg_counted("o", days), _pg_counted("n", days)
    names = list(old)
    both = ", ".join(f"{row[name]} AS {alias}_{name}" for alias, row in (("o", old), ("n", new)) for name in names)
    lives = "o.deleted_at IS NULL AS o_live, n.deleted_at IS NULL AS n_live"
    old_row, new_row = ", ".join(old.values()), ", ".join(new.values())

    def side(alias, delta):
        values = ", ".join(f"{alias}_{name} AS {name}" for name in names)
        return f"SELECT {values}, {delta} AS delta FROM changed WHERE {alias}_live"

    return f"""
    WITH changed AS (
        SELECT {both}, {lives}
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE ({old_row}, o.deleted_at IS NULL) IS DISTINCT FROM ({new_row}, n.deleted_at IS NULL)
    )
    {side("o", -1)}
    UNION ALL
    {side("n", 1)}
    """


def _pg_functions(days):
    return (
        _pg_collect("task_counts_collect_insert", _pg_rows("new_rows", 1, days), days),
        _pg_collect("task_counts_collect_delete", _pg_rows("old_rows", -1, days), days),
        _pg_collect("task_counts_collect_update", _pg_changed(days), days),
        _pg_apply(days),
    )


# SQLite: row-level triggers adding into `task_counts` straight away (one writer at a time).


def _sqlite_keys(row, days):
    """A task row's (dimension, key) pairs as SELECT arms over `row` (new or old)."""
    pairs = [
        ("'all' AS dimension", "'' AS key"),  # SQLite names a subquery's columns after its first arm
        ("'task_type'", f"{row}.task_type"),
        ("'contact_person'", f"coalesce({row}.contact_person_id, '')"),
        ("'created_by'", f"{row}.created_by"),
        ("'project'", f"coalesce({row}.project_id, '')"),
        ("'priority'", f"{row}.priority"),
    ]
    if days:
        day = DAY["sqlite"].format(f"{row}.task_time")
        pairs += [("'due_day'", day), ("'project_due_day'", f"coalesce({row}.project_id, '') || ':' || {day}")]
    return " UNION ALL ".join(f"SELECT {dimension}, {key}" for dimension, key in pairs)


def _sqlite_add(row, delta, days):
    """Add `delta` to the counters of `row` when it is live. The WHERE also keeps SQLite's UPSERT parser happy."""
    return f"""
        INSERT INTO task_counts (dimension, key, status, count)
        SELECT k.dimension, k.key, {row}.status, {delta} FROM ({_sqlite_keys(row, days)}) AS k
        WHERE {row}.deleted_at IS NULL
        ON CONFLICT (dimension, key, status) DO UPDATE SET count = count + excluded.count;
    """


def _sqlite_row(row, days):
    values = [f"{row}.{column}" for column in COUNTED]
    if days:
        values.append(DAY["sqlite"].format(f"{row}.task_time"))
    return ", ".join(values)


def _sqlite_triggers(days):
    columns = ", ".join([*COUNTED, "task_time"] if days else COUNTED)
    return (
        f"CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN {_sqlite_add('new', 1, days)} END",
        f"CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN {_sqlite_add('old', -1, days)} END",
        f"""
        CREATE TRIGGER task_counts_update AFTER UPDATE OF {columns}, deleted_at ON tasks
        WHEN ({_sqlite_row("old", days)}, old.deleted_at IS NULL)
            IS NOT ({_sqlite_row("new", days)}, new.deleted_at IS NULL)
        BEGIN {_sqlite_add("old", -1, days)} {_sqlite_add("new", 1, days)} END
        """,
    )


SQLITE_DROP = (
    "DROP TRIGGER task_counts_update",
    "DROP TRIGGER task_counts_delete",
    "DROP TRIGGER task_counts_insert",
)


def _fill(dialect):
    """The new rows of the tasks already there (one GROUP BY per dimension)."""
    day = DAY[dialect].format("task_time")
    project = "coalesce(replace(CAST(project_id AS VARCHAR), '-', ''), '')"
    for dimension, key in (("due_day", day), ("project_due_day", f"{project} || ':' || {day}")):
        op.execute(
            f"INSERT INTO task_counts (dimension, key, status, count) "
            f"SELECT '{dimension}', {key}, status, count(*) FROM tasks WHERE deleted_at IS NULL GROUP BY {key}, status"
        )


def _set_dimensions(dimensions):
    with op.batch_alter_table("task_counts") as batch_op:
        batch_op.drop_constraint(op.f("ck_task_counts_dimension"), type_="check")
        batch_op.create_check_constraint(op.f("ck_task_counts_dimension"), _check(dimensions))


def _run(statements):
    for statement in statements:
        op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    else:
        _run(SQLITE_DROP)  # before rebuilding task_counts, which they name
    op.create_index(INDEX, "tasks", ["task_time", "project_id"], postgresql_where=ACTIVE_LIVE, sqlite_where=ACTIVE_LIVE)
    _set_dimensions(DIMENSIONS)
    _fill(dialect)
    _run(_pg_functions(days=True) if dialect == "postgresql" else _sqlite_triggers(days=True))


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
        _run(_pg_functions(days=False))
    else:
        _run(SQLITE_DROP)
    op.execute(sa.text(f"DELETE FROM task_counts WHERE dimension IN ({NEW_DIMENSIONS})"))
    _set_dimensions(DIMENSIONS_0025)
    if dialect != "postgresql":
        _run(_sqlite_triggers(days=False))
    op.drop_index(INDEX, table_name="tasks")
