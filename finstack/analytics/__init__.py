from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("analytics", __name__, url_prefix="/api/analytics", description="Dashboards")

from finstack.analytics import routes  # noqa: E402,F401 - routes attach themselves to bp
