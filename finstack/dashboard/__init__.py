from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("dashboard", __name__, url_prefix="/api/dashboard", description="My personal dashboard")

from finstack.dashboard import routes  # noqa: E402,F401 - routes attach themselves to bp
