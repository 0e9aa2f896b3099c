from flask_jwt_extended import current_user

from finstack.comments import bp, service
from finstack.comments.schemas import CommentCreate, CommentOut, CommentQuery, CommentUpdate
from finstack.core.schemas import page_of


@bp.get("/<uuid:task_id>/comments")
@bp.auth_required()
@bp.arguments(CommentQuery, location="query")
@bp.response(200, page_of(CommentOut))
def list_comments(query, task_id):
    """The task's comments, oldest first."""
    return service.list_comments(current_user, task_id, **query)


@bp.post("/<uuid:task_id>/comments")
@bp.auth_required()
@bp.arguments(CommentCreate)
@bp.response(201, CommentOut)
def create_comment(data, task_id):
    """Comment on any task. The task's creator and assignee are notified; `@username` notifies that user."""
    return service.create_comment(current_user, task_id, data["content"])


@bp.patch("/<uuid:task_id>/comments/<uuid:comment_id>")
@bp.auth_required()
@bp.arguments(CommentUpdate)
@bp.response(200, CommentOut)
def update_comment(data, task_id, comment_id):
    """Rewrite your own comment; users it newly mentions are notified."""
    return service.update_comment(current_user, task_id, comment_id, data["content"])


@bp.delete("/<uuid:task_id>/comments/<uuid:comment_id>")
@bp.auth_required()
@bp.response(204)
def delete_comment(task_id, comment_id):
    """Delete a comment (its author, a manager or an admin)."""
    service.delete_comment(current_user, task_id, comment_id)
