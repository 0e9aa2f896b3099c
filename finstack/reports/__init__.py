from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("reports", __name__, url_prefix="/api/reports", description="Productivity reports")

from finstack.reports import routes  # noqa: E402,F401 - routes attach themselves to bp
