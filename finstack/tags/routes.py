from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.tags import bp, service
from finstack.tags.schemas import TagCountOut, TagListQuery


@bp.get("")
@bp.auth_required()
@bp.arguments(TagListQuery, location="query")
@bp.response(200, page_of(TagCountOut))
def list_tags(query):
    """Tags of the tasks you may read, each with its task count; most used first, then alphabetical."""
    return service.list_tags(current_user, query)
