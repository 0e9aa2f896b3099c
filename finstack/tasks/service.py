"""Task rules: creation, updates, status changes, deletion, bulk changes and the filtered list."""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tasks.models import ACTIVE_STATUSES, Task
from finstack.users import service as users

SORT_COLUMNS = {
    "date_created": Task.date_created,
    "task_time": Task.task_time,
    "entity_name": Task.entity_name,
    "task_type": Task.task_type,
    "status": Task.status,
    "priority": Task.priority,
    "updated_at": Task.updated_at,
}


def _require_active_assignee(contact_person_id):
    if contact_person_id is not None and not users.active_user_exists(contact_person_id):
        raise ApiError(400, "Validation failed", {"contact_person_id": ["No active user has this id."]})


def _check_version(task, version):
    if version is not None and version != task.version:
        raise ApiError(
            409,
            "The task was changed by someone else; reload and try again",
            {"current_version": task.version},
        )


def get_task(task_id):
    task = db.session.get(Task, task_id)
    if task is None:
        raise ApiError(404, "Task not found")
    return task


def get_editable_task(actor, task_id):
    task = get_task(task_id)
    if not permissions.can_edit_task(actor, task):
        raise ApiError(403, "Only the task's creator, its assignee, a manager or an admin may change it")
    return task


def create_task(actor, *, status, **fields):
    _require_active_assignee(fields.get("contact_person_id"))
    task = Task(created_by=actor.id, status="open", **fields)
    task.set_status(status, utcnow())
    db.session.add(task)
    db.session.commit()
    return task


def update_task(actor, task_id, changes):
    task = get_editable_task(actor, task_id)
    _check_version(task, changes.pop("version", None))
    if "contact_person_id" in changes and changes["contact_person_id"] != task.contact_person_id:
        _require_active_assignee(changes["contact_person_id"])
    status = changes.pop("status", None)
    for field, value in changes.items():
        setattr(task, field, value)
    if status is not None:
        task.set_status(status, utcnow())
    db.session.commit()
    return task


def change_status(actor, task_id, status, version=None):
    return update_task(actor, task_id, {"status": status, "version": version})


def delete_task(actor, task_id):
    task = get_task(task_id)
    if not permissions.can_delete_task(actor, task):
        raise ApiError(403, "Only the task's creator, a manager or an admin may delete it")
    db.session.delete(task)
    db.session.commit()


def bulk_change_status(actor, task_ids, status):
    """Change the status of every task the actor may edit, in one transaction and one UPDATE."""
    requested = list(dict.fromkeys(task_ids))
    rows = db.session.execute(
        sa.select(Task.id, Task.created_by, Task.contact_person_id).where(Task.id.in_(requested))
    ).all()
    found = {row.id: row for row in rows}
    allowed = [
        task_id for task_id in requested if task_id in found and permissions.can_edit_task(actor, found[task_id])
    ]
    if allowed:
        now = utcnow()
        closed_at = sa.case((Task.status == "closed", Task.closed_at), else_=now) if status == "closed" else None
        db.session.execute(
            sa.update(Task)
            .where(Task.id.in_(allowed), Task.status != status)
            .values(status=status, closed_at=closed_at, updated_at=now, version=Task.version + 1)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return {
        "updated": allowed,
        "not_found": [task_id for task_id in requested if task_id not in found],
        "forbidden": [task_id for task_id in requested if task_id in found and task_id not in allowed],
    }


def task_filters(query):
    """SQL conditions for the list filters in `query` (a loaded TaskListQuery)."""
    conditions = []
    for field in ("status", "priority", "contact_person_id", "created_by"):
        if query.get(field) is not None:
            conditions.append(getattr(Task, field) == query[field])
    for field in ("task_type", "entity_name"):
        if query.get(field):
            conditions.append(contains_literal(getattr(Task, field), query[field]))
    if query.get("date_from"):
        conditions.append(Task.date_created >= query["date_from"])
    if query.get("date_to"):
        conditions.append(Task.date_created <= query["date_to"])
    if query.get("overdue") is not None:
        overdue = sa.and_(Task.status.in_(ACTIVE_STATUSES), Task.task_time < utcnow())
        conditions.append(overdue if query["overdue"] else sa.not_(overdue))
    return conditions


def list_tasks(query):
    conditions = task_filters(query)
    column = SORT_COLUMNS[query["sort_by"]]
    direction = sa.desc if query["sort_order"] == "desc" else sa.asc
    statement = sa.select(Task).where(*conditions).order_by(direction(column), direction(Task.id))
    return paginate(
        statement,
        page=query["page"],
        per_page=query["per_page"],
        count_statement=sa.select(Task.id).where(*conditions),
    )
