"""Productivity reports: 000's metrics and weights, aggregated by SQL so they are exact at any size.

Per assignee (`contact_person_id`), over the tasks they hold (optionally only those created in a date range):

- `total_tasks_assigned`;
- `tasks_completed`: status `closed`;
- `tasks_completed_on_time`: closed with `closed_at <= task_time`;
- `overdue_tasks`: open or in progress with `task_time` in the past;
- `average_completion_time_hours`: mean of `closed_at - date_created` over closed tasks (0 without any);
- `productivity_score`: 40 % completion rate + 30 % on-time rate + 30 % (100 - overdue rate), between 0 and 100,
  rounded to 2 decimals, 0 without tasks.

The score is computed in SQL, and in integers so that SQLite and PostgreSQL agree to the last digit: with T tasks
the score is W / T where W = 40·completed + 30·on_time + 30·(T - overdue), and W / T rounded half up to hundredths
is (200·W + T) div (2·T). Each rate is at most 100 %, so the score needs no clamping in SQL; the dump clamps anyway.

Every report is one GROUP BY over the tasks, outer-joined to the active users (so users without tasks appear, with
zeros), and paged, sorted or ranked in the same statement.
"""


import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.sql import count_where, hours_between
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks.models import ACTIVE_STATUSES, Task
from finstack.users.models import User

WEIGHT_COMPLETED = 40
WEIGHT_ON_TIME = 30
WEIGHT_NOT_OVERDUE = 30

SORTS = ("productivity_score", "user_name")


def _task_conditions(date_from, date_to):
    """The tasks a report counts: not in the trash, created in the range."""
    conditions = [Task.live()]
    if date_from is not None:
        conditions.append(Task.date_created >= date_from)
    if date_to is not None:
        conditions.append(Task.date_created <= date_to)
    return conditions


def _overdue(now):
    return sa.and_(Task.status.in_(ACTIVE_STATUSES), Task.task_time < now)


def _user_conditions(user_id):
    conditions = [User.is_active.is_(True)]
    if user_id is not None:
        conditions.append(User.id == user_id)
    return conditions


def _per_user(actor, now, *, user_id=None, date_from=None, date_to=None):
    """One row per active user (or just `user_id`): the metrics over the tasks `actor` may read, and
    `score_hundredths`. Not ordered."""
    closed = Task.status == "closed"
    task_conditions = [
        Task.contact_person_id.is_not(None),
        permissions.readable_tasks_clause(actor, Task),
        *_task_conditions(date_from, date_to),
    ]
    if user_id is not None:
        task_conditions.append(Task.contact_person_id == user_id)
    per_assignee = (
        sa.select(
            Task.contact_person_id.label("user_id"),
            sa.func.count().label("total"),
            count_where(closed).label("completed"),
            count_where(sa.and_(closed, Task.closed_at <= Task.task_time)).label("on_time"),
            count_where(_overdue(now)).label("overdue"),
            sa.func.avg(sa.case((closed, hours_between(Task.closed_at, Task.date_created)))).label("avg_hours"),
        )
        .where(*task_conditions)
        .group_by(Task.contact_person_id)
        .subquery("per_assignee")
    )
    total, completed, on_time, overdue = (
        sa.func.coalesce(column, 0)
        for column in (per_assignee.c.total, per_assignee.c.completed, per_assignee.c.on_time, per_assignee.c.overdue)
    )
    weighted = WEIGHT_COMPLETED * completed + WEIGHT_ON_TIME * on_time + WEIGHT_NOT_OVERDUE * (total - overdue)
    score_hundredths = sa.case((total > 0, (200 * weighted + total) // (2 * total)), else_=0)
    return (
        sa.select(
            User.id.label("user_id"),
            User.full_name.label("user_name"),
            User.email.label("user_email"),
            total.label("total_tasks_assigned"),
            completed.label("tasks_completed"),
            on_time.label("tasks_completed_on_time"),
            overdue.label("overdue_tasks"),
            per_assignee.c.avg_hours.label("avg_hours"),
            score_hundredths.label("score_hundredths"),
        )
        .select_from(User)
        .outerjoin(per_assignee, per_assignee.c.user_id == User.id)
        .where(*_user_conditions(user_id))
    )


def _ordered(statement, sort_by):
    columns = statement.selected_columns
    if sort_by == "user_name":
        return statement.order_by(columns.user_name, columns.user_id)
    return statement.order_by(columns.score_hundredths.desc(), columns.user_name, columns.user_id)


def _score(hundredths):
    return min(max(int(hundredths), 0), 100 * 100) / 100


def _as_report(row):
    return {
        "user_id": row.user_id,
        "user_name": row.user_name,
        "user_email": row.user_email,
        "total_tasks_assigned": row.total_tasks_assigned,
        "tasks_completed": row.tasks_completed,
        "tasks_completed_on_time": row.tasks_completed_on_time,
        "overdue_tasks": row.overdue_tasks,
        "average_completion_time_hours": round(float(row.avg_hours), 2) if row.avg_hours is not None else 0.0,
        "productivity_score": _score(row.score_hundredths),
    }


def _subject(actor, user_id):
    """The user the report is limited to: members always get their own row; others may ask for anyone's."""
    if user_id is None:
        return None if permissions.can_view_user_report(actor, None) else actor.id
    permissions.require(
        permissions.can_view_user_report(actor, user_id), "Members may only see their own productivity figures"
    )
    return user_id


def user_productivity(
    actor, *, page, per_page, cursor=None, sort_by="productivity_score", user_id=None, date_from=None, date_to=None
):
    """One page of per-user figures in the list envelope; the total counts active users, not tasks."""
    user_id = _subject(actor, user_id)
    statement = _per_user(actor, utcnow(), user_id=user_id, date_from=date_from, date_to=date_to)
    result = paginate(
        _ordered(statement, sort_by),
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=sa.select(User.id).where(*_user_conditions(user_id)),
        whole_rows=True,
    )
    result["items"] = [_as_report(row) for row in result["items"]]
    return result


def user_productivity_rows(actor, *, sort_by="productivity_score", user_id=None, date_from=None, date_to=None):
    """Every row the report covers, unpaged (the CSV export): one per active user at most."""
    user_id = _subject(actor, user_id)
    statement = _per_user(actor, utcnow(), user_id=user_id, date_from=date_from, date_to=date_to)
    return [_as_report(row) for row in db.session.execute(_ordered(statement, sort_by))]


def team_overview(actor, *, limit=5, date_from=None, date_to=None):
    """Team totals, the mean score over active users, and the `limit` best and worst performers.

    Two statements: the task totals (every task, assigned or not), and the per-user aggregate ranked both ways
    with window functions, which also yield the user count and the mean score.
    """
    permissions.require(permissions.can_view_team_reports(actor), "Only managers and admins may see the team overview")
    now = utcnow()
    totals = db.session.execute(
        sa.select(
            sa.func.count().label("total_tasks"),
            count_where(Task.status == "closed").label("total_completed"),
            count_where(_overdue(now)).label("total_overdue"),
        ).where(*_task_conditions(date_from, date_to))
    ).one()

    per_user = _per_user(actor, now, date_from=date_from, date_to=date_to).subquery("per_user")
    score, name, user_id = per_user.c.score_hundredths, per_user.c.user_name, per_user.c.user_id
    ranked = sa.select(
        per_user,
        sa.func.row_number().over(order_by=(score.desc(), name, user_id)).label("top_rank"),
        sa.func.row_number().over(order_by=(score.asc(), name, user_id)).label("bottom_rank"),
        sa.func.avg(score).over().label("mean_hundredths"),
        sa.func.count().over().label("users"),
    ).subquery("ranked")
    rows = db.session.execute(
        sa.select(ranked)
        .where(sa.or_(ranked.c.top_rank <= limit, ranked.c.bottom_rank <= limit))
        .order_by(ranked.c.top_rank)
    ).all()

    mean = float(rows[0].mean_hundredths) / 100 if rows else 0.0
    return {
        "total_users": rows[0].users if rows else 0,
        "total_tasks": totals.total_tasks,
        "total_completed": totals.total_completed,
        "total_overdue": totals.total_overdue,
        "average_productivity_score": round(mean, 2),
        "top_performers": [_as_report(row) for row in rows if row.top_rank <= limit],
        "bottom_performers": [
            _as_report(row) for row in sorted(rows, key=lambda row: row.bottom_rank) if row.bottom_rank <= limit
        ],
    }
