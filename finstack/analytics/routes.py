from flask_jwt_extended import current_user

from finstack.analytics import bp, service
from finstack.analytics.schemas import DashboardOut, DashboardQuery


@bp.get("/dashboard")
@bp.auth_required()
@bp.arguments(DashboardQuery, location="query")
@bp.response(200, DashboardOut)
def dashboard(query):
    """Task counts by status, by type and by assignee. Members see the tasks they created or hold."""
    return service.dashboard(current_user, query["limit"])
