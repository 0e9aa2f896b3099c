from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("events", __name__, url_prefix="/api", description="Your event stream: what you missed, in order")

from finstack.stream import routes  # noqa: E402,F401 - routes attach themselves to bp
