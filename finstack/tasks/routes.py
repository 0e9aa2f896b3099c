from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.tasks import bp, service
from finstack.tasks.schemas import (
    BulkResultOut,
    BulkStatusIn,
    StatusChange,
    TaskCreate,
    TaskListQuery,
    TaskOut,
    TaskUpdate,
)


@bp.post("")
@bp.auth_required()
@bp.arguments(TaskCreate)
@bp.response(201, TaskOut)
def create_task(data):
    """Create a task, optionally assigned to any active user (`contact_person_id`)."""
    return service.create_task(current_user, **data)


@bp.get("")
@bp.auth_required()
@bp.arguments(TaskListQuery, location="query")
@bp.response(200, page_of(TaskOut))
def list_tasks(query):
    """Filter, sort and page tasks. Text filters are case-insensitive literal substrings."""
    return service.list_tasks(query)


@bp.get("/<uuid:task_id>")
@bp.auth_required()
@bp.response(200, TaskOut)
def get_task(task_id):
    return service.get_task(task_id)


@bp.put("/<uuid:task_id>")
@bp.auth_required()
@bp.arguments(TaskUpdate)
@bp.response(200, TaskOut)
def update_task(changes, task_id):
    """Change any of the task's fields; fields left out keep their value."""
    return service.update_task(current_user, task_id, changes)


@bp.patch("/<uuid:task_id>/status")
@bp.auth_required()
@bp.arguments(StatusChange)
@bp.response(200, TaskOut)
def change_status(data, task_id):
    return service.change_status(current_user, task_id, data["status"], data.get("version"))


@bp.delete("/<uuid:task_id>")
@bp.auth_required()
@bp.response(204)
def delete_task(task_id):
    service.delete_task(current_user, task_id)


@bp.post("/bulk-status")
@bp.auth_required()
@bp.arguments(BulkStatusIn)
@bp.response(200, BulkResultOut)
def bulk_status(data):
    """Set one status on many tasks at once; says which ids were updated, not found or forbidden."""
    return service.bulk_change_status(current_user, data["task_ids"], data["status"])
