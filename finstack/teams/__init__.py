from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("teams", __name__, url_prefix="/api/teams", description="Teams and their members")

from finstack.teams import routes  # noqa: E402,F401 - routes attach themselves to bp
