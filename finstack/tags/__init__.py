from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("tags", __name__, url_prefix="/api/tags", description="Task tags and how many tasks carry each")

from finstack.tags import routes  # noqa: E402,F401 - routes attach themselves to bp
