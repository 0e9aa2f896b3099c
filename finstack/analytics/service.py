"""Dashboard figures, computed by SQL aggregates so they are exact at any size."""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks.models import ACTIVE_STATUSES, Task
from finstack.users.models import User


def _count_where(condition):
    return sa.func.count(sa.case((condition, 1)))


def dashboard(actor, limit):
    sees_all = permissions.sees_all_tasks(actor)
    own = [permissions.own_tasks_clause(actor, Task), permissions.readable_tasks_clause(actor, Task)]
    scope = [Task.live()] if sees_all else [Task.live(), *own]
    summary = db.session.execute(
        sa.select(
            sa.func.count().label("total_tasks"),
            _count_where(Task.status == "open").label("open_tasks"),
            _count_where(Task.status == "in_progress").label("in_progress_tasks"),
            _count_where(Task.status == "closed").label("closed_tasks"),
            _count_where(Task.status == "cancelled").label("cancelled_tasks"),
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

    return {
        "summary": summary._asdict(),
        "task_types": [row._asdict() for row in task_types],
        "user_tasks": [row._asdict() for row in user_tasks],
        "scope": "all" if sees_all else "own",
    }
