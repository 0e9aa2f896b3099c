from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("comments", __name__, url_prefix="/api/tasks", description="Discussion on a task")

from finstack.comments import routes  # noqa: E402,F401 - routes attach themselves to bp
