from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("activity", __name__, url_prefix="/api", description="A task's history, and my own actions")

from finstack.activity import routes  # noqa: E402,F401 - routes attach themselves to bp
