from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("projects", __name__, url_prefix="/api/projects", description="Projects, their members and progress")

from finstack.projects import routes  # noqa: E402,F401 - routes attach themselves to bp
