from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint("users", __name__, url_prefix="/api/users", description="The user directory and your own profile")

from finstack.users import routes  # noqa: E402,F401 - routes attach themselves to bp
