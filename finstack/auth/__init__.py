from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("auth", __name__, url_prefix="/api/auth", description="Registration, login and tokens")

from finstack.auth import routes  # noqa: E402,F401 - routes attach themselves to bp
