from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("notifications", __name__, url_prefix="/api", description="Your notifications and e-mail choices")

from finstack.notifications import routes  # noqa: E402,F401 - routes attach themselves to bp
