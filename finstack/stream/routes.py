from flask_jwt_extended import current_user

from finstack.stream import bp, service
from finstack.stream.schemas import EventPageOut, EventQuery


@bp.get("/events")
@bp.auth_required()
@bp.arguments(EventQuery, location="query")
@bp.response(200, EventPageOut)
def list_events(query):
    """Your events after `since` (a `seq`), oldest first; `resync` true when some were pruned (reload your state,
    then continue from `last_seq`)."""
    return service.events_after(current_user, **query)
