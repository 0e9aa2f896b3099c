from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("attachments", __name__, url_prefix="/api/tasks", description="Files attached to a task")

from finstack.attachments import routes  # noqa: E402,F401 - routes attach themselves to bp
