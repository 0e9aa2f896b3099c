"""Dashboard figures, exact at any size: for whoever sees every task, read from the maintained counts
(finstack.tasks.counts) plus one indexed count of the overdue; for a member, SQL aggregates over their own tasks."""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks import counts
from finstack.tasks.models import ACTIVE_STATUSES, STATUSES, Task
from finstack.users.models import User


def _count_where(condition):
    return sa.func.count(sa.case((condition, 1)))


SUMMARY_FIELDS = {status: f"{status}_tasks" for status in STATUSES}


def _all_tasks(limit):
    """Everyone's live tasks: the maintained counts (finstack.tasks.counts), overdue included."""
    statuses, overdue = counts.with_overdue("all", "")
    summary = {"total_tasks": sum(statuses.values()), "overdue_tasks": overdue}
    summary |= {SUMMARY_FIELDS[status]: count for status, count in statuses.items()}
    task_types = counts.top("task_type", limit)
    per_user = counts.top("contact_person", limit, assigned=True)
    return (
        summary,
        db.session.execute(sa.select(task_types.c.key.label("type"), task_types.c.count)).all(),
        db.session.execute(
            sa.select(User.full_name.label("user"), User.id.label("user_id"), per_user.c.count)
            .join(per_user, User.id == sa.cast(per_user.c.key, sa.Uuid))
            .order_by(per_user.c.count.desc(), User.full_name)
        ).all(),
    )


def _own_tasks(actor, limit):
    """The tasks a member created or holds and may read: aggregated over their rows (indexed by creator and
    assignee), since no maintained count follows one reader's visibility."""
    scope = [Task.live(), permissions.own_tasks_clause(actor, Task), permissions.readable_tasks_clause(actor, Task)]
    summary = db.session.execute(
        sa.select(
            sa.func.count().label("total_tasks"),
            *(_count_where(Task.status == status).label(field) for status, field in SUMMARY_FIELDS.items()),
            _count_where(sa.and_(Task.status.in_(ACTIVE_STATUSES), Task.task_time < utcnow())).label("overdue_tasks"),
        ).where(*scope)
    ).one()

    type_count = sa.func.count().label("count")
    task_types = db.session.execute(
        sa.select(Task.task_type.label("type"), type_count)
        .where(*scope)
        .group_by(Task.task_type)
        .order_by(type_count.desc(), Task.task_type)
        .limit(limit)
    ).all()

    per_user = (
        sa.select(Task.contact_person_id, sa.func.count().label("count"))
        .where(Task.contact_person_id.is_not(None), *scope)
        .group_by(Task.contact_person_id)
        .order_by(sa.func.count().desc(), Task.contact_person_id)
        .limit(limit)
        .subquery()
    )
    user_tasks = db.session.execute(
        sa.select(User.full_name.label("user"), User.id.label("user_id"), per_user.c.count)
        .join(per_user, per_user.c.contact_person_id == User.id)
        .order_by(per_user.c.count.desc(), User.full_name)
    ).all()
    return summary._asdict(), task_types, user_tasks


def dashboard(actor, limit):
    sees_all = permissions.sees_all_tasks(actor)
    summary, task_types, user_tasks = _all_tasks(limit) if sees_all else _own_tasks(actor, limit)
    return {
        "summary": summary,
        "task_types": [row._asdict() for row in task_types],
        "user_tasks": [row._asdict() for row in user_tasks],
        "scope": "all" if sees_all else "own",
    }
