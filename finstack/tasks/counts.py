"""Maintained counts of live tasks by status (`task_counts`), per dimension: all, task type, assignee, creator,
project, priority, due day and project's due day.

Database triggers keep the table in step with every write to `tasks` in the writer's own transaction (migrations
0025 and 0027; on PostgreSQL the deltas are applied at COMMIT, so a transaction does not see its own writes here). The
dashboards and project progress read a few of its rows instead of aggregating the tasks; `rebuild` (`flask stats
rebuild`) recomputes it from a fresh GROUP BY.
"""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.sql import utc_day
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.projects.models import Project
from finstack.tasks.models import ACTIVE_STATUSES, STATUSES, Task, TaskCount

# The column each dimension counts by ("all": one key, ""; "project_due_day": the project and the due time).
DIMENSION_COLUMNS = {
    "all": None,
    "task_type": Task.task_type,
    "contact_person": Task.contact_person_id,
    "created_by": Task.created_by,
    "project": Task.project_id,
    "priority": Task.priority,
    "due_day": Task.task_time,
    "project_due_day": (Task.project_id, Task.task_time),
}
UUID_DIMENSIONS = ("contact_person", "created_by", "project")
# The due-day dimension whose buckets hold a dimension's overdue tasks (`with_overdue`).
DUE_DAYS = {"all": "due_day", "project": "project_due_day"}


def key_of(dimension, column):
    """SQL: the `task_counts.key` of `column`'s value (a UUID as 32 hex digits on both databases, NULL as "", a due
    time as its UTC day 'YYYY-MM-DD', a project's due day as '<project key>:<day>')."""
    if column is None:
        return sa.literal("")
    if dimension in UUID_DIMENSIONS:
        return sa.func.coalesce(sa.func.replace(sa.cast(column, sa.String), "-", ""), "")
    if dimension == "due_day":
        return utc_day(column)
    if dimension == "project_due_day":
        project_id, task_time = column
        return sa.type_coerce(key_of("project", project_id), sa.String) + ":" + utc_day(task_time)
    return column


def uuid_key(value):
    """The key of a UUID (or of None)."""
    return "" if value is None else value.hex


def day_prefix(dimension, key):
    """The text before the day in the keys of `key`'s due-day buckets ("" for "all", '<project key>:' for a
    project)."""
    return "" if dimension == "all" else f"{key}:"


def with_overdue(dimension, key, *conditions):
    """`({status: count}, overdue)` of one key ("all" or a project). Overdue depends on the clock, so it is not
    maintained as such: it is the active tasks counted in the key's due-day buckets before today (UTC), plus the
    live active tasks due today before now (`conditions` narrow them to the key's), one indexed count over a day's
    tasks at most, whatever the backlog and the planning horizon. One statement, so one snapshot for all three."""
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    prefix = day_prefix(dimension, key)
    before_today = (
        sa.select(sa.func.coalesce(sa.func.sum(TaskCount.count), 0))
        .where(
            TaskCount.dimension == DUE_DAYS[dimension],
            TaskCount.key >= prefix,
            TaskCount.key < prefix + today.date().isoformat(),
            TaskCount.status.in_(ACTIVE_STATUSES),
        )
        .scalar_subquery()
    )
    due_today = (
        sa.select(sa.func.count())
        .where(Task.live(), Task.status.in_(ACTIVE_STATUSES), Task.task_time >= today, Task.task_time < now)
        .where(*conditions)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(TaskCount.status, TaskCount.count, before_today, due_today).where(
            TaskCount.dimension == dimension, TaskCount.key == key
        )
    ).all()
    statuses = dict.fromkeys(STATUSES, 0) | {status: count for status, count, _, _ in rows}
    overdue = rows[0][2] + rows[0][3] if rows else 0  # no row: no live task
    return statuses, overdue


def project_keys(*conditions):
    """SQL: the project dimension's keys of the projects meeting `conditions`."""
    return sa.select(key_of("project", Project.id)).where(*conditions)


# The task list's project filters, as conditions on `Project`.
PROJECT_CONDITIONS = {
    "project_id": lambda value: Project.id == value,
    "team_id": lambda value: Project.team_id == value,
}
# Task list filters a maintained count answers (besides `status`): each names its dimension and its keys.
LIST_FILTER_KEYS = {
    "priority": lambda value: ("priority", [value]),
    "contact_person_id": lambda value: ("contact_person", [uuid_key(value)]),
    "created_by": lambda value: ("created_by", [uuid_key(value)]),
    "project_id": lambda value: ("project", project_keys(PROJECT_CONDITIONS["project_id"](value))),
    "team_id": lambda value: ("project", project_keys(PROJECT_CONDITIONS["team_id"](value))),
}
PROJECT_FILTERS = (*PROJECT_CONDITIONS, "no_project")
UNCOUNTED_FILTERS = ("task_type", "entity_name", "date_from", "date_to", "due_from", "due_to", "q", "tag", "overdue")


def list_total(query, actor):
    """SQL: the exact number of live tasks a task list `query` (a loaded TaskListQuery) matches, from the
    maintained counts, or None when they cannot tell.

    Visibility goes by project (`permissions.readable_projects_clause`), so an `actor` who reads only some
    projects' tasks is counted from the project dimension: filtered by nothing or by the project filters (and
    `status`). One who reads every task is counted by `status` and/or one of LIST_FILTER_KEYS or `no_project`."""
    if any(query.get(name) not in (None, "", []) for name in UNCOUNTED_FILTERS):
        return None
    chosen = [name for name in (*LIST_FILTER_KEYS, "no_project") if query.get(name) is not None]
    everything = permissions.sees_all_tasks(actor)
    if len(chosen) > 1 or (chosen and not everything and chosen[0] not in PROJECT_FILTERS):
        return None
    conditions = [TaskCount.status == query["status"]] if query.get("status") is not None else []
    total = sa.func.coalesce(sa.func.sum(TaskCount.count), 0)
    no_project = sa.and_(TaskCount.dimension == "project", TaskCount.key == "")
    if not everything:
        narrowed = [PROJECT_CONDITIONS[name](query[name]) for name in chosen if name in PROJECT_CONDITIONS]
        projects = project_keys(permissions.readable_projects_clause(actor, Project), *narrowed)
        in_projects = sa.and_(TaskCount.dimension == "project", TaskCount.key.in_(projects))
        if not chosen:
            conditions.append(sa.or_(no_project, in_projects))
        elif chosen == ["no_project"] and query["no_project"]:
            conditions.append(no_project)
        else:
            conditions.append(in_projects)
    elif not chosen:
        conditions += [TaskCount.dimension == "all", TaskCount.key == ""]
    elif chosen == ["no_project"]:
        conditions.append(sa.or_(sa.and_(TaskCount.dimension == "all", TaskCount.key == ""), no_project))
        if query["no_project"]:
            conditions.append(no_project)
        else:  # every live task minus those in no project
            total = sa.func.coalesce(sa.func.sum(sa.case((no_project, -TaskCount.count), else_=TaskCount.count)), 0)
    else:
        dimension, keys = LIST_FILTER_KEYS[chosen[0]](query[chosen[0]])
        conditions += [TaskCount.dimension == dimension, TaskCount.key.in_(keys)]
    return sa.select(total).where(*conditions)


def sum_of(status):
    """SQL aggregate over joined `task_counts` rows: their count of `status` (0 without rows)."""
    return sa.func.coalesce(sa.func.sum(sa.case((TaskCount.status == status, TaskCount.count), else_=0)), 0)


def top(dimension, limit, *, assigned=False):
    """The subquery of the `limit` keys of `dimension` with the most live tasks (`key`, `count`), most first, then
    by key; `assigned` leaves out the key "" (no value)."""
    total = sa.func.sum(TaskCount.count)
    conditions = [TaskCount.dimension == dimension]
    if assigned:
        conditions.append(TaskCount.key != "")
    return (
        sa.select(TaskCount.key, total.label("count"))
        .where(*conditions)
        .group_by(TaskCount.key)
        .having(total > 0)
        .order_by(total.desc(), TaskCount.key)
        .limit(limit)
        .subquery("top_keys")
    )


def fresh():
    """`{(dimension, key, status): count}` computed from the live tasks (one GROUP BY per dimension)."""
    arms = []
    for dimension, column in DIMENSION_COLUMNS.items():
        key = key_of(dimension, column)
        grouped_by = (Task.status,) if column is None else (key, Task.status)
        arms.append(
            sa.select(sa.literal(dimension), key, Task.status, sa.func.count()).where(Task.live()).group_by(*grouped_by)
        )
    rows = db.session.execute(sa.union_all(*arms))
    return {(dimension, key, status): count for dimension, key, status, count in rows}


def stored():
    """`{(dimension, key, status): count}` as the table holds it."""
    rows = db.session.execute(sa.select(TaskCount.dimension, TaskCount.key, TaskCount.status, TaskCount.count))
    return {(dimension, key, status): count for dimension, key, status, count in rows}


def _lock():
    """Keep every task writer out of `task_counts` until this transaction ends (readers go on)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("LOCK TABLE task_counts IN EXCLUSIVE MODE"))
    else:
        # SQLite: a write takes the database's write lock, so no writer commits before us.
        db.session.execute(sa.delete(TaskCount).where(TaskCount.count == 0))


def rebuild():
    """Recompute the table in one transaction, the table locked against writers; returns the rows it changed as
    `(dimension, key, status, stored count or None, fresh count or None)`, in key order. A row at 0 that no live
    task needs any more is dropped silently (it counts nothing)."""
    _lock()
    old, new = stored(), fresh()
    changes = []
    for row in sorted(old.keys() | new.keys()):
        before, after = old.get(row), new.get(row)
        if before == after or (after is None and before == 0):
            continue
        changes.append((*row, before, after))
    for dimension, key, status, before, after in changes:
        identity = (TaskCount.dimension == dimension, TaskCount.key == key, TaskCount.status == status)
        if after is None:
            db.session.execute(sa.delete(TaskCount).where(*identity))
        elif before is None:
            db.session.add(TaskCount(dimension=dimension, key=key, status=status, count=after))
        else:
            db.session.execute(sa.update(TaskCount).where(*identity).values(count=after))
    db.session.execute(sa.delete(TaskCount).where(TaskCount.count == 0))
    db.session.commit()
    return changes
