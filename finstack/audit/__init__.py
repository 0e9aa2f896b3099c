from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("audit", __name__, url_prefix="/api/audit-logs", description="Who changed what, and when")

from finstack.audit import routes  # noqa: E402,F401 - routes attach themselves to bp
