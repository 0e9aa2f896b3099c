from flask_jwt_extended import current_user

from finstack.chat import conversations
from finstack.chat.schemas import ConversationOut
from finstack.core.schemas import PageQuery, page_of
from finstack.tickets import bp, misuse, service
from finstack.tickets.schemas import (
    AgentCreate,
    AgentOut,
    BlockedTermCreate,
    BlockedTermOut,
    DepartmentCreate,
    DepartmentOut,
    DepartmentUpdate,
    FeedbackIn,
    MisuseReportOut,
    MisuseReportQuery,
    MisuseReview,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleQuery,
    RoutingRuleUpdate,
    TicketAssign,
    TicketCreate,
    TicketListQuery,
    TicketOut,
    TicketReroute,
    TicketStatusChange,
    TicketUpdate,
)

# --- Departments and agents --------------------------------------------------------------------------------------


@bp.get("/departments")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(DepartmentOut))
def list_departments(query):
    """Every signed-in user sees the departments, by name."""
    return service.list_departments(**query)


@bp.post("/departments")
@bp.auth_required()
@bp.arguments(DepartmentCreate)
@bp.response(201, DepartmentOut)
def create_department(data):
    """Admins only; names are unique whatever their case."""
    return service.create_department(current_user, **data)


@bp.get("/departments/<uuid:department_id>")
@bp.auth_required()
@bp.response(200, DepartmentOut)
def get_department(department_id):
    return service.get_department(department_id)


@bp.put("/departments/<uuid:department_id>")
@bp.auth_required()
@bp.arguments(DepartmentUpdate)
@bp.response(200, DepartmentOut)
def update_department(changes, department_id):
    """Admins only; fields left out keep their value."""
    return service.update_department(current_user, department_id, changes)


@bp.delete("/departments/<uuid:department_id>")
@bp.auth_required()
@bp.response(204)
def delete_department(department_id):
    """Admins only; refused (409) while tickets name the department, and for Triage."""
    service.delete_department(current_user, department_id)


@bp.get("/departments/<uuid:department_id>/agents")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(AgentOut))
def list_agents(query, department_id):
    """The department's agents and admins see them: leads first, then by name."""
    return service.list_agents(current_user, department_id, **query)


@bp.post("/departments/<uuid:department_id>/agents")
@bp.auth_required()
@bp.arguments(AgentCreate)
@bp.response(201, AgentOut)
def add_agent(data, department_id):
    """Admins only; `lead` agents also assign the department's tickets."""
    return service.add_agent(current_user, department_id, **data)


@bp.delete("/departments/<uuid:department_id>/agents/<uuid:user_id>")
@bp.auth_required()
@bp.response(204)
def remove_agent(department_id, user_id):
    """Admins only; the agent's active tickets there go back to the department's queue, unassigned."""
    service.remove_agent(current_user, department_id, user_id)


# --- Routing rules and blocked terms (admins) --------------------------------------------------------------------


@bp.get("/routing-rules")
@bp.auth_required()
@bp.arguments(RoutingRuleQuery, location="query")
@bp.response(200, page_of(RoutingRuleOut))
def list_rules(query):
    """Highest priority first."""
    return service.list_rules(current_user, **query)


@bp.post("/routing-rules")
@bp.auth_required()
@bp.arguments(RoutingRuleCreate)
@bp.response(201, RoutingRuleOut)
def create_rule(data):
    return service.create_rule(current_user, **data)


@bp.get("/routing-rules/<uuid:rule_id>")
@bp.auth_required()
@bp.response(200, RoutingRuleOut)
def get_rule(rule_id):
    return service.get_rule(current_user, rule_id)


@bp.put("/routing-rules/<uuid:rule_id>")
@bp.auth_required()
@bp.arguments(RoutingRuleUpdate)
@bp.response(200, RoutingRuleOut)
def update_rule(changes, rule_id):
    return service.update_rule(current_user, rule_id, changes)


@bp.delete("/routing-rules/<uuid:rule_id>")
@bp.auth_required()
@bp.response(204)
def delete_rule(rule_id):
    service.delete_rule(current_user, rule_id)


@bp.get("/admin/blocked-terms")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(BlockedTermOut))
def list_blocked_terms(query):
    return service.list_blocked_terms(current_user, **query)


@bp.post("/admin/blocked-terms")
@bp.auth_required()
@bp.arguments(BlockedTermCreate)
@bp.response(201, BlockedTermOut)
def add_blocked_term(data):
    """Matched as whole words, whatever their case: a new ticket mentioning one is held for review."""
    return service.add_blocked_term(current_user, **data)


@bp.delete("/admin/blocked-terms/<uuid:term_id>")
@bp.auth_required()
@bp.response(204)
def delete_blocked_term(term_id):
    service.delete_blocked_term(current_user, term_id)


# --- Tickets -----------------------------------------------------------------------------------------------------


@bp.post("/tickets")
@bp.auth_required()
@bp.arguments(TicketCreate)
@bp.response(201, TicketOut)
def create_ticket(data):
    """Routed at once, or held for review when the content check flags it. At most TICKETS_PER_DAY in 24 hours
    per requester (429 `rate_limited` with Retry-After); agents and admins are exempt."""
    return service.create_ticket(current_user, **data)


@bp.get("/tickets")
@bp.auth_required()
@bp.arguments(TicketListQuery, location="query")
@bp.response(200, page_of(TicketOut))
def list_tickets(query):
    """My own tickets, my departments' (agents), every ticket (admins)."""
    return service.list_tickets(current_user, **query)


@bp.get("/tickets/<uuid:ticket_id>")
@bp.auth_required()
@bp.response(200, TicketOut)
def get_ticket(ticket_id):
    """404 to whoever may not read it."""
    return service.get_ticket(current_user, ticket_id)


@bp.get("/tickets/<uuid:ticket_id>/conversation")
@bp.auth_required()
@bp.response(200, ConversationOut)
def get_ticket_conversation(ticket_id):
    """The ticket's chat, as the chat API shows it (404 to whoever may not read the ticket); then read and post with
    `/api/chat/conversations/<id>/messages`. Opening it puts your live sockets in its rooms (agents of the
    department who are neither its assignee nor a lead join this way)."""
    return conversations.ticket_conversation_view(current_user, ticket_id)


@bp.put("/tickets/<uuid:ticket_id>")
@bp.auth_required()
@bp.arguments(TicketUpdate)
@bp.response(200, TicketOut)
def update_ticket(changes, ticket_id):
    """The requester, while the ticket is `open`."""
    return service.update_ticket(current_user, ticket_id, changes)


@bp.patch("/tickets/<uuid:ticket_id>/status")
@bp.auth_required()
@bp.arguments(TicketStatusChange)
@bp.response(200, TicketOut)
def change_status(data, ticket_id):
    """Along the transition table (409 otherwise); `open` from resolved or closed reopens (the requester, within
    TICKET_REOPEN_DAYS). `resolved` may carry a `resolution`."""
    return service.change_status(current_user, ticket_id, **data)


@bp.patch("/tickets/<uuid:ticket_id>/assign")
@bp.auth_required()
@bp.arguments(TicketAssign)
@bp.response(200, TicketOut)
def assign_ticket(data, ticket_id):
    """The department's leads and admins; the assignee must be an agent of the ticket's department."""
    return service.assign(current_user, ticket_id, data["assignee_id"])


@bp.patch("/tickets/<uuid:ticket_id>/department")
@bp.auth_required()
@bp.arguments(TicketReroute)
@bp.response(200, TicketOut)
def reroute_ticket(data, ticket_id):
    """The department's agents and admins move an active ticket; it is assigned by load there."""
    return service.reroute(current_user, ticket_id, data["department_id"])


@bp.post("/tickets/<uuid:ticket_id>/feedback")
@bp.auth_required()
@bp.arguments(FeedbackIn)
@bp.response(200, TicketOut)
def give_feedback(data, ticket_id):
    """The requester, once, after the ticket was resolved."""
    return service.give_feedback(current_user, ticket_id, **data)


@bp.post("/tickets/<uuid:ticket_id>/release")
@bp.auth_required()
@bp.response(200, TicketOut)
def release_ticket(ticket_id):
    """Admins: a held ticket is routed as a new one would be."""
    return service.release(current_user, ticket_id)


@bp.post("/tickets/<uuid:ticket_id>/reject")
@bp.auth_required()
@bp.response(200, TicketOut)
def reject_ticket(ticket_id):
    """Admins: a held ticket becomes `rejected`, for good."""
    return service.reject(current_user, ticket_id)


# --- Misuse reports (admins) -------------------------------------------------------------------------------------


@bp.get("/admin/misuse-reports")
@bp.auth_required()
@bp.arguments(MisuseReportQuery, location="query")
@bp.response(200, page_of(MisuseReportOut))
def list_misuse_reports(query):
    """What `flask tickets sweep-misuse` found, newest day first: one report per user per day."""
    return misuse.list_reports(current_user, **query)


@bp.get("/admin/misuse-reports/<uuid:report_id>")
@bp.auth_required()
@bp.response(200, MisuseReportOut)
def get_misuse_report(report_id):
    return misuse.get_report(current_user, report_id)


@bp.patch("/admin/misuse-reports/<uuid:report_id>")
@bp.auth_required()
@bp.arguments(MisuseReview)
@bp.response(200, MisuseReportOut)
def review_misuse_report(data, report_id):
    """Mark reviewed, and act once: `none`, `warn` (a notification to the user) or `suspend` (the account is
    deactivated and its sessions end; not an admin's own, nor the last admin's). Acting marks the report reviewed."""
    return misuse.review(current_user, report_id, **data)
