from flask_jwt_extended import current_user

from finstack.core.schemas import PageQuery, page_of
from finstack.tasks import board, bp, service
from finstack.tasks.schemas import (
    BulkDeleteOut,
    BulkIdsIn,
    BulkResultOut,
    BulkStatusIn,
    BulkUpdateIn,
    CancelIn,
    MoveIn,
    StatusChange,
    TaskCreate,
    TaskListQuery,
    TaskOut,
    TaskUpdate,
    TrashedTaskOut,
)


@bp.post("")
@bp.auth_required()
@bp.arguments(TaskCreate)
@bp.response(201, TaskOut)
def create_task(data):
    """Create a task, optionally assigned to any active user (`contact_person_id`)."""
    return service.create_task(current_user, **data)


@bp.get("")
@bp.auth_required(user_row=True)
@bp.arguments(TaskListQuery, location="query")
@bp.response(200, page_of(TaskOut))
def list_tasks(query):
    """Filter, sort and page tasks. Text filters are case-insensitive literal substrings; `q` is a word search."""
    return service.list_tasks(current_user, query)


@bp.get("/trash")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(TrashedTaskOut))
def list_trash(query):
    """Tasks in the trash, most recently trashed first: members see the ones they created, managers and admins all."""
    return service.list_trash(current_user, **query)


@bp.get("/<uuid:task_id>")
@bp.auth_required()
@bp.response(200, TaskOut)
def get_task(task_id):
    return service.get_readable_task(current_user, task_id)


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


@bp.patch("/<uuid:task_id>/move")
@bp.auth_required()
@bp.arguments(MoveIn)
@bp.response(200, TaskOut)
def move_task(data, task_id):
    """Put a project task in a board column: right below `after_id`, right above `before_id`, or at the top."""
    return board.move_task(current_user, task_id, **data)


@bp.delete("/<uuid:task_id>")
@bp.auth_required()
@bp.response(204)
def delete_task(task_id):
    """Move the task to the trash: it is 404 everywhere until restored, and purged for good later."""
    service.delete_task(current_user, task_id)


@bp.post("/<uuid:task_id>/restore")
@bp.auth_required()
@bp.response(200, TaskOut)
def restore_task(task_id):
    """Bring a task back from the trash with its comments, attachments and chat (whoever may delete it)."""
    return service.restore_task(current_user, task_id)


@bp.post("/bulk-status")
@bp.auth_required()
@bp.arguments(BulkStatusIn)
@bp.response(200, BulkResultOut)
def bulk_status(data):
    """Set one status on many tasks at once; says which ids were updated, not found or forbidden."""
    return service.bulk_change_status(current_user, data["task_ids"], data["status"])


@bp.patch("/<uuid:task_id>/cancel")
@bp.auth_required()
@bp.arguments(CancelIn, required=False)
@bp.response(200, TaskOut)
def cancel_task(data, task_id):
    """Cancel the task (same permission as a status change)."""
    return service.change_status(current_user, task_id, "cancelled", data.get("version"))


@bp.post("/bulk-update")
@bp.auth_required()
@bp.arguments(BulkUpdateIn)
@bp.response(200, BulkResultOut)
def bulk_update(data):
    """Set status, priority and/or assignee on many tasks; ids you may not edit come back as forbidden."""
    task_ids = data.pop("task_ids")
    return service.bulk_update(current_user, task_ids, data)


@bp.post("/bulk-cancel")
@bp.auth_required()
@bp.arguments(BulkIdsIn)
@bp.response(200, BulkResultOut)
def bulk_cancel(data):
    return service.bulk_cancel(current_user, data["task_ids"])


@bp.post("/bulk-delete")
@bp.auth_required()
@bp.arguments(BulkIdsIn)
@bp.response(200, BulkDeleteOut)
def bulk_delete(data):
    """Managers and admins: move many tasks to the trash."""
    return service.bulk_delete(current_user, data["task_ids"])
