from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("tasks", __name__, url_prefix="/api/tasks", description="Client tasks")

from finstack.tasks import routes  # noqa: E402,F401 - routes attach themselves to bp
