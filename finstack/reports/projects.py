"""FlowTrack's reports: a project's report, team performance and workload per assignee.

Each is a fixed number of SQL aggregates (GROUP BY, window functions), never rows loaded into Python, so the
figures are exact at any size. They count live tasks only (not in the trash) that the caller may read
(`permissions.readable_tasks_clause`), optionally of one project (`project_id`, which must be readable: 404) or of
the projects of one team (`team_id`, which must be readable: 403, 404).

Rows of team performance and workload are assignees (`contact_person_id`) holding at least one task counted.
Managers and admins see everyone's rows; a member sees their own row only, except with `team_id` of a team they
manage, where they see the rows of the team's members.
"""

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.sql import count_where, hours_between, medians
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.projects import service as projects
from finstack.projects.access import get_readable_project
from finstack.projects.models import Project
from finstack.tasks.models import ACTIVE_STATUSES, PRIORITIES, Task
from finstack.teams import service as teams
from finstack.teams.models import TeamMember
from finstack.users.models import User

DEFAULT_WEEKS = 8
MAX_WEEKS = 52


def percentage(part, whole):
    return round(100 * part / whole, 1) if whole else 0.0


def _overdue(now):
    return sa.and_(Task.status.in_(ACTIVE_STATUSES), Task.task_time < now)


def _readable(actor):
    return [Task.live(), permissions.readable_tasks_clause(actor, Task)]


def _scope(actor, project_id, team_id):
    """SQL conditions on the tasks counted, and on the assignees whose rows the actor may see."""
    conditions = _readable(actor)
    team_role = team_member_ids = None
    if project_id is not None:
        conditions.append(Task.project_id == get_readable_project(actor, project_id).id)
    if team_id is not None:
        team = teams.get_readable_team(actor, team_id)
        team_role = teams.team_role(team.id, actor.id)
        team_member_ids = sa.select(TeamMember.user_id).where(TeamMember.team_id == team.id)
        conditions.append(Task.project_id.in_(sa.select(Project.id).where(Project.team_id == team.id)))
    rows = permissions.workload_rows_clause(actor, Task.contact_person_id, team_role, team_member_ids)
    return [*conditions, Task.contact_person_id.is_not(None), rows]


def _with_users(per_assignee, *extra_columns):
    return sa.select(
        User.id.label("user_id"),
        User.username,
        User.full_name,
        *(column for column in per_assignee.c if column.name != "user_id"),
        *extra_columns,
    ).join(per_assignee, per_assignee.c.user_id == User.id)


def _medians(conditions):
    """Per assignee (`key`), the median of `closed_at - date_created` in hours over their closed tasks."""
    durations = (
        sa.select(
            Task.contact_person_id.label("key"),
            hours_between(Task.closed_at, Task.date_created).label("hours"),
        )
        .where(*conditions, Task.status == "closed", Task.closed_at.is_not(None))
        .subquery("durations")
    )
    return medians(durations)


def _performance_statement(actor, project_id, team_id, date_from, date_to):
    conditions = _scope(actor, project_id, team_id)
    if date_from is not None:
        conditions.append(Task.date_created >= date_from)
    if date_to is not None:
        conditions.append(Task.date_created <= date_to)
    per_assignee = (
        sa.select(
            Task.contact_person_id.label("user_id"),
            sa.func.count().label("total"),
            count_where(Task.status == "closed").label("completed"),
            count_where(Task.status == "in_progress").label("in_progress"),
            count_where(Task.status == "open").label("open"),
            count_where(Task.status == "cancelled").label("cancelled"),
        )
        .where(*conditions)
        .group_by(Task.contact_person_id)
        .subquery("per_assignee")
    )
    per_assignee_medians = _medians(conditions)
    statement = (
        _with_users(per_assignee, per_assignee_medians.c.median_hours)
        .outerjoin(per_assignee_medians, per_assignee_medians.c.key == User.id)
        .order_by(User.full_name, User.id)
    )
    return statement, sa.select(per_assignee.c.user_id)


def _performance_row(row):
    return {
        **row,
        "completion_rate": percentage(row["completed"], row["total"] - row["cancelled"]),
        "median_hours_to_close": round(float(row["median_hours"]), 2) if row["median_hours"] is not None else None,
    }


def team_performance(
    actor, *, page, per_page, cursor=None, project_id=None, team_id=None, date_from=None, date_to=None
):
    statement, count = _performance_statement(actor, project_id, team_id, date_from, date_to)
    result = paginate(statement, page=page, per_page=per_page, cursor=cursor, count_statement=count, rows=True)
    return {**result, "items": [_performance_row(row) for row in result["items"]]}


def team_performance_rows(actor, *, project_id=None, team_id=None, date_from=None, date_to=None):
    statement, _ = _performance_statement(actor, project_id, team_id, date_from, date_to)
    return [_performance_row(row) for row in db.session.execute(statement).mappings()]


def _workload_statement(actor, project_id, team_id):
    now = utcnow()
    per_assignee = (
        sa.select(
            Task.contact_person_id.label("user_id"),
            count_where(Task.status == "open").label("open"),
            count_where(Task.status == "in_progress").label("in_progress"),
            *(count_where(Task.priority == priority).label(f"priority_{priority}") for priority in PRIORITIES),
            count_where(Task.task_time < now).label("overdue"),
            sa.func.count().label("total_open"),
        )
        .where(*_scope(actor, project_id, team_id), Task.status.in_(ACTIVE_STATUSES))
        .group_by(Task.contact_person_id)
        .subquery("per_assignee")
    )
    statement = _with_users(per_assignee).order_by(per_assignee.c.total_open.desc(), User.full_name, User.id)
    return statement, sa.select(per_assignee.c.user_id)


def workload(actor, *, page, per_page, cursor=None, project_id=None, team_id=None):
    statement, count = _workload_statement(actor, project_id, team_id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor, count_statement=count, rows=True)


def workload_rows(actor, *, project_id=None, team_id=None):
    statement, _ = _workload_statement(actor, project_id, team_id)
    return db.session.execute(statement).mappings().all()


def _week_starts(now, weeks):
    """The Mondays (00:00 UTC) that start the last `weeks` weeks, oldest first; the last one starts this week."""
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), time.min, UTC)
    return [monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def _per_week(column, starts, conditions):
    """`{week index: count}` of the tasks whose `column` falls in each week (one GROUP BY over a CASE)."""
    week = sa.case(*((column >= start, index) for index, start in reversed(list(enumerate(starts)))))
    # Grouped in an outer query: PostgreSQL would not match a CASE in GROUP BY to its twin in SELECT (new params).
    weeks = sa.select(week.label("week")).where(*conditions, column >= starts[0]).subquery("weeks")
    return dict(db.session.execute(sa.select(weeks.c.week, sa.func.count()).group_by(weeks.c.week)).all())


def project_report(actor, project_id, *, weeks=DEFAULT_WEEKS):
    """Progress, counts by priority and by assignee, and tasks created and closed in each of the last `weeks`."""
    project = get_readable_project(actor, project_id)
    now = utcnow()
    conditions = [*_readable(actor), Task.project_id == project.id]
    overdue = _overdue(now)
    statuses = (
        count_where(Task.status == "open").label("open"),
        count_where(Task.status == "in_progress").label("in_progress"),
        count_where(Task.status == "closed").label("closed"),
    )
    priority_rows = db.session.execute(
        sa.select(
            Task.priority,
            sa.func.count().label("total"),
            *statuses,
            count_where(Task.status == "cancelled").label("cancelled"),
            count_where(overdue).label("overdue"),
        )
        .where(*conditions)
        .group_by(Task.priority)
    ).mappings()
    by_priority = {row["priority"]: dict(row) for row in priority_rows}
    by_priority = [
        by_priority.get(priority, dict.fromkeys(("total", "open", "in_progress", "closed", "cancelled", "overdue"), 0))
        | {"priority": priority}
        for priority in PRIORITIES
    ]

    per_assignee = (
        sa.select(
            Task.contact_person_id.label("user_id"),
            sa.func.count().label("total"),
            *statuses,
            count_where(overdue).label("overdue"),
        )
        .where(*conditions)
        .group_by(Task.contact_person_id)
        .subquery("per_assignee")
    )
    by_assignee = db.session.execute(
        sa.select(per_assignee, User.username, User.full_name)
        .outerjoin(User, User.id == per_assignee.c.user_id)
        .order_by(per_assignee.c.total.desc(), User.full_name.is_(None), User.full_name, User.id)
    ).mappings()

    starts = _week_starts(now, weeks)
    created = _per_week(Task.date_created, starts, conditions)
    closed = _per_week(Task.closed_at, starts, [*conditions, Task.status == "closed"])

    return {
        "project": project,
        "progress": projects.project_progress(project.id),
        "by_priority": by_priority,
        "by_assignee": [dict(row) for row in by_assignee],
        "weekly": [
            {"week_start": start.date(), "created": created.get(index, 0), "closed": closed.get(index, 0)}
            for index, start in enumerate(starts)
        ],
    }
