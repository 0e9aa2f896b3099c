from flask_jwt_extended import current_user

from finstack.audit import bp, service
from finstack.audit.schemas import AuditLogOut, AuditLogQuery
from finstack.core import permissions
from finstack.core.schemas import page_of


@bp.get("")
@bp.auth_required()
@bp.arguments(AuditLogQuery, location="query")
@bp.response(200, page_of(AuditLogOut))
def list_audit_logs(query):
    """The audit trail, newest first (managers and admins)."""
    permissions.require(permissions.can_read_audit_log(current_user), "Only managers and admins may read the audit log")
    return service.list_entries(**query)
