from finstack.core.blueprint import ApiBlueprint

bp = ApiBlueprint(
    "helpdesk",
    __name__,
    url_prefix="/api",
    description="Helpdesk: departments and agents, tickets, routing rules, blocked terms, knowledge base and answers",
)

from finstack.tickets import kb_routes, routes  # noqa: E402,F401 - routes attach themselves to bp
