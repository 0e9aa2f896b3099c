"""The personal dashboard: a fixed number of queries, whatever the number of tasks, projects or notifications.

"My tasks" are the live tasks I hold (`contact_person_id`) and may read; the recent ones also count those I created.
"""

from datetime import timedelta

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.sql import count_where
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications import service as notifications
from finstack.notifications.models import Notification
from finstack.projects.access import member_project_ids
from finstack.projects.models import Project
from finstack.reports.projects import percentage
from finstack.tasks import counts
from finstack.tasks.models import ACTIVE_STATUSES, STATUSES, Task, TaskCount
from finstack.tasks.service import load_tasks

RECENT = 5
DUE_SOON_DAYS = 7
DUE_SOON_ITEMS = 10
OVERDUE_ITEMS = 5
PROJECTS = 10
NOTIFICATIONS = 5


def _task_ids(conditions, order, limit):
    return db.session.scalars(sa.select(Task.id).where(*conditions).order_by(*order, Task.id).limit(limit)).all()


def _tasks_by_list(id_lists):
    """The tasks of each list of ids, loaded together as the task list loads its page (rows, not ORM objects)."""
    unique = list(dict.fromkeys(task_id for ids in id_lists for task_id in ids))
    by_id = {str(item["id"]): item for item in load_tasks(unique)}
    return [[by_id[str(task_id)] for task_id in ids] for ids in id_lists]


def _projects(user):
    """My first active projects by name, then their counts by status (maintained, finstack.tasks.counts): a member
    of a project reads all its tasks, so the project's counts are mine to see."""
    mine = (
        sa.select(Project.id, Project.key, Project.name)
        .where(Project.id.in_(member_project_ids(user.id)), Project.status == "active")
        .order_by(Project.name, Project.id)
        .limit(PROJECTS)
        .subquery("mine")
    )
    counted = sa.and_(TaskCount.dimension == "project", TaskCount.key == counts.key_of("project", mine.c.id))
    rows = db.session.execute(
        sa.select(
            mine.c.id,
            mine.c.key,
            mine.c.name,
            *(counts.sum_of(status).label(status) for status in STATUSES),
        )
        .select_from(mine)
        .outerjoin(TaskCount, counted)
        .group_by(mine.c.id, mine.c.key, mine.c.name)
        .order_by(mine.c.name, mine.c.id)
    ).mappings()
    return [
        {
            "id": row["id"],
            "key": row["key"],
            "name": row["name"],
            "progress_percentage": percentage(row["closed"], row["open"] + row["in_progress"] + row["closed"]),
            "open_tasks": row["open"],
            "in_progress_tasks": row["in_progress"],
        }
        for row in rows
    ]


def dashboard(user):
    now = utcnow()
    readable = [Task.live(), permissions.readable_tasks_clause(user, Task)]
    mine = [*readable, Task.contact_person_id == user.id, Task.status.in_(ACTIVE_STATUSES)]
    due_soon = sa.and_(Task.task_time >= now, Task.task_time < now + timedelta(days=DUE_SOON_DAYS))
    overdue = Task.task_time < now
    counts = db.session.execute(
        sa.select(
            count_where(Task.status == "open").label("open"),
            count_where(Task.status == "in_progress").label("in_progress"),
            count_where(due_soon).label("due_soon"),
            count_where(overdue).label("overdue"),
        ).where(*mine)
    ).one()
    mine_or_created = [*readable, permissions.own_tasks_clause(user, Task)]
    recent, due_soon_items, overdue_items = _tasks_by_list(
        [
            _task_ids(mine_or_created, [Task.date_created.desc()], RECENT),
            _task_ids([*mine, due_soon], [Task.task_time], DUE_SOON_ITEMS),
            _task_ids([*mine, overdue], [Task.task_time], OVERDUE_ITEMS),
        ]
    )
    return {
        "recent_tasks": recent,
        "my_open_by_status": {"open": counts.open, "in_progress": counts.in_progress},
        "due_soon": {"count": counts.due_soon, "items": due_soon_items},
        "overdue": {"count": counts.overdue, "items": overdue_items},
        "projects": _projects(user),
        "unread_notifications": notifications.unread_count(user),
        "latest_notifications": db.session.scalars(
            sa.select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(NOTIFICATIONS)
        ).all(),
    }
