from finstack.core.blueprint import ApiBlueprint

URL_PREFIX = "/api/chat"

bp = ApiBlueprint(
    "chat", __name__, url_prefix=URL_PREFIX, description="Direct, group and task conversations; messages, pins, files"
)

from finstack.chat import routes  # noqa: E402,F401 - routes attach themselves to bp
