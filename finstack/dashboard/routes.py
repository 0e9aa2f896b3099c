from flask_jwt_extended import current_user

from finstack.dashboard import bp, service
from finstack.dashboard.schemas import PersonalDashboardOut


@bp.get("")
@bp.auth_required()
@bp.response(200, PersonalDashboardOut)
def dashboard():
    """My tasks, my projects' progress and my notifications at a glance, in a fixed number of queries."""
    return service.dashboard(current_user)
