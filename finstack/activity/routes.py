from flask_jwt_extended import current_user

from finstack.activity import bp, service
from finstack.activity.schemas import ActivityOut, MyActivityQuery
from finstack.core.schemas import PageQuery, page_of


@bp.get("/tasks/<uuid:task_id>/activity")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(ActivityOut))
def task_activity(query, task_id):
    """The task's history, newest first: its changes, moves, trash and restore, comments and files, and the bulk
    changes that touched it. Whoever may read the task."""
    return service.task_activity(current_user, task_id, **query)


@bp.get("/activity")
@bp.auth_required()
@bp.arguments(MyActivityQuery, location="query")
@bp.response(200, page_of(ActivityOut))
def my_activity(query):
    """What I did, newest first; `date_from`/`date_to` bound `created_at`."""
    return service.my_activity(current_user, **query)
