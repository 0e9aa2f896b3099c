"""Helpdesk: departments and their agents, tickets and their life cycle, routing rules, blocked terms, limits."""

import math
import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from finstack.audit import service as audit
from finstack.chat.models import Conversation
from finstack.core import permissions
from finstack.core.locks import lock_rows
from finstack.core.pagination import paginate
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tickets import chat, events, search, sla
from finstack.tickets import notifications as notices
from finstack.tickets.access import agent_departments as _agent_departments
from finstack.tickets.access import department_role
from finstack.tickets.models import (
    ACTIVE_STATUSES,
    TRIAGE,
    URGENCIES,
    BlockedTerm,
    Department,
    DepartmentAgent,
    RoutingRule,
    Ticket,
    TicketCounter,
)
from finstack.tickets.routing import least_loaded_agent, router
from finstack.tickets.schemas import RELEVANCE, show
from finstack.tickets.screening import content_check
from finstack.users import service as users
from finstack.users.models import User

DEFAULT_DEPARTMENTS = (
    {"system_key": "it", "name": "IT", "description": "Computers, accounts, access, software and networks"},
    {"system_key": "hr", "name": "HR", "description": "Leave, payroll, contracts and other people matters"},
    {"system_key": TRIAGE, "name": "Triage", "description": "Tickets no routing rule matched, to be routed by hand"},
)
LIMIT_WINDOW = timedelta(hours=24)
TICKET_NUMBER = re.compile(r"^(?:TKT-?)?0*(\d{1,9})$", re.IGNORECASE)

# For each status, the statuses `PATCH …/status` may move a ticket to, and who may: "staff" (the department's agents
# and admins), "requester", or "anyone" of the two. `assigned` is reached through `PATCH …/assign`; `held` tickets
# leave their status through release or reject.
TRANSITIONS = {
    "open": {"in_progress": "staff", "closed": "anyone"},
    "assigned": {"in_progress": "staff", "waiting_on_requester": "staff", "resolved": "staff", "closed": "anyone"},
    "in_progress": {"waiting_on_requester": "staff", "resolved": "staff", "closed": "anyone"},
    "waiting_on_requester": {"in_progress": "anyone", "resolved": "staff", "closed": "anyone"},
    "resolved": {"closed": "anyone", "open": "requester"},
    "closed": {"open": "requester"},
    "held": {},
    "rejected": {},
}
STATUS_REFUSALS = {
    "staff": "Only the department's agents or an admin may set this status",
    "requester": "Only the ticket's requester may reopen it",
    "anyone": "Only the requester, the department's agents or an admin may set this status",
}
# On PostgreSQL an expression index on this very CASE serves the urgency sort (migration 0024): change both together.
URGENCY_RANK = sa.case({urgency: rank for rank, urgency in enumerate(URGENCIES)}, value=Ticket.urgency)


def _insert_ignoring_conflicts(model):
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


# --- Departments -------------------------------------------------------------------------------------------------


def _add_default_departments():
    """Insert IT, HR and Triage where missing (by `system_key`, whatever they were renamed to), in the caller's
    transaction; a concurrent transaction inserting them too makes the conflicting rows no-ops. A department an admin
    made with the same name (and no key) is adopted instead."""
    existing = set(db.session.scalars(sa.select(Department.system_key).where(Department.system_key.is_not(None))))
    missing = []
    for values in DEFAULT_DEPARTMENTS:
        if values["system_key"] in existing:
            continue
        adopted = db.session.execute(
            sa.update(Department)
            .where(sa.func.lower(Department.name) == values["name"].lower(), Department.system_key.is_(None))
            .values(system_key=values["system_key"])
        ).rowcount
        if not adopted:
            missing.append(dict(values))
    if missing:
        now = utcnow()
        for values in missing:
            values.update(id=uuid.uuid4(), created_at=now, updated_at=now)
        db.session.execute(_insert_ignoring_conflicts(Department), missing)


def ensure_default_departments():
    """`flask setup` and the first start: the default departments exist afterwards."""
    _add_default_departments()
    db.session.commit()


def triage_department():
    """Routing needs Triage; a database emptied since setup gets it back (with IT and HR) in the routing transaction."""
    department = db.session.scalar(sa.select(Department).where(Department.system_key == TRIAGE))
    if department is None:
        _add_default_departments()
        department = db.session.scalar(sa.select(Department).where(Department.system_key == TRIAGE))
    return department


def _agent_department_roles(user_id):
    return dict(
        db.session.execute(
            sa.select(DepartmentAgent.department_id, DepartmentAgent.role).where(DepartmentAgent.user_id == user_id)
        ).all()
    )


def get_department(department_id):
    department = db.session.get(Department, department_id)
    if department is None:
        raise ApiError(404, "Department not found")
    return department


def _require_admin(actor):
    permissions.require(permissions.can_administer_helpdesk(actor), "Only admins may manage the helpdesk")


def _refuse_taken_name(name, department_id=None):
    taken = sa.select(Department.id).where(sa.func.lower(Department.name) == name.lower())
    if department_id is not None:
        taken = taken.where(Department.id != department_id)
    if db.session.scalar(taken) is not None:
        raise ApiError(409, "A department with this name exists", {"name": [name]})


def list_departments(*, page, per_page, cursor=None):
    return paginate(
        sa.select(Department).order_by(Department.name, Department.id), page=page, per_page=per_page, cursor=cursor
    )


def create_department(actor, *, name, description=None):
    _require_admin(actor)
    _refuse_taken_name(name)
    department = Department(name=name, description=description)
    db.session.add(department)
    db.session.flush()
    audit.record(actor, "department.create", "department", department.id, {"name": name, "description": description})
    db.session.commit()
    return department


def update_department(actor, department_id, changes):
    _require_admin(actor)
    department = get_department(department_id)
    if "name" in changes:
        _refuse_taken_name(changes["name"], department.id)
    changed = audit.diff(department, changes)
    if changed:
        for name in changed:
            setattr(department, name, changes[name])
        audit.record(actor, "department.update", "department", department.id, changed)
        db.session.commit()
    return department


def delete_department(actor, department_id):
    """Refused while tickets name it (whatever their status: their history stays whole), and for Triage."""
    _require_admin(actor)
    department = get_department(department_id)
    if department.system_key == TRIAGE:
        raise ApiError(409, "The triage department receives unrouted tickets and cannot be deleted")
    lock_rows(Department, [department.id])
    tickets = db.session.scalar(sa.select(sa.func.count()).where(Ticket.department_id == department.id))
    if tickets:
        raise ApiError(409, "The department holds tickets: re-route them first", {"tickets": tickets})
    audit.record(actor, "department.delete", "department", department.id, {"name": department.name})
    db.session.delete(department)
    db.session.commit()


def list_agents(actor, department_id, *, page, per_page, cursor=None):
    department = get_department(department_id)
    permissions.require(
        permissions.can_list_department_agents(actor, department_role(department.id, actor.id)),
        "Only the department's agents or an admin may list its agents",
    )
    statement = (
        sa.select(DepartmentAgent)
        .join(User, User.id == DepartmentAgent.user_id)
        .where(DepartmentAgent.department_id == department.id)
        .order_by(sa.case((DepartmentAgent.role == "lead", 0), else_=1), User.full_name, User.id)
    )
    count = sa.select(DepartmentAgent.user_id).where(DepartmentAgent.department_id == department.id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor, count_statement=count)


def add_agent(actor, department_id, *, user_id, role):
    _require_admin(actor)
    department = get_department(department_id)
    if users.find_active(user_id) is None:
        raise ApiError(400, "Validation failed", {"user_id": ["No active user has this id."]})
    if db.session.get(DepartmentAgent, (department.id, user_id)) is not None:
        raise ApiError(409, "This user is already an agent of the department", {"user_id": [str(user_id)]})
    agent = DepartmentAgent(department_id=department.id, user_id=user_id, role=role)
    db.session.add(agent)
    audit.record(actor, "department.agent_add", "department", department.id, {"user_id": user_id, "role": role})
    events.agent_added(department.id, user_id)
    db.session.commit()
    return agent


def remove_agent(actor, department_id, user_id):
    """The agent's active tickets in the department go back to its queue, unassigned; their live sockets leave the
    rooms of the department's ticket conversations."""
    _require_admin(actor)
    department = get_department(department_id)
    agent = db.session.get(DepartmentAgent, (department.id, user_id))
    if agent is None:
        raise ApiError(404, "This user is not an agent of the department")
    requeued = db.session.scalars(
        sa.update(Ticket)
        .where(
            Ticket.department_id == department.id,
            Ticket.assignee_id == user_id,
            Ticket.status.in_(ACTIVE_STATUSES),
        )
        .values(assignee_id=None, status="open", updated_at=utcnow())
        .returning(Ticket.id)
    ).all()
    audit.record(
        actor,
        "department.agent_remove",
        "department",
        department.id,
        {"user_id": user_id, "role": agent.role, "tickets_requeued": len(requeued)},
    )
    chat.agent_removed(department.id, agent.user)
    db.session.delete(agent)
    events.tickets_updated(requeued)
    events.agent_removed(department.id, user_id)
    db.session.commit()


# --- Routing rules and blocked terms ----------------------------------------------------------------------------


def _require_department_exists(department_id):
    if db.session.get(Department, department_id) is None:
        raise ApiError(400, "Validation failed", {"department_id": ["No department has this id."]})


def get_rule(actor, rule_id):
    _require_admin(actor)
    rule = db.session.get(RoutingRule, rule_id)
    if rule is None:
        raise ApiError(404, "Routing rule not found")
    return rule


def list_rules(actor, *, page, per_page, cursor=None, department_id=None):
    _require_admin(actor)
    statement = sa.select(RoutingRule).order_by(RoutingRule.priority.desc(), RoutingRule.created_at, RoutingRule.id)
    if department_id is not None:
        statement = statement.where(RoutingRule.department_id == department_id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


def create_rule(actor, **values):
    _require_admin(actor)
    _require_department_exists(values["department_id"])
    rule = RoutingRule(**values)
    db.session.add(rule)
    db.session.flush()
    audit.record(actor, "routing_rule.create", "routing_rule", rule.id, values)
    db.session.commit()
    return rule


def update_rule(actor, rule_id, changes):
    rule = get_rule(actor, rule_id)
    if "department_id" in changes:
        _require_department_exists(changes["department_id"])
    merged = {"keywords": rule.keywords, "category": rule.category, **changes}
    if not merged["keywords"] and not merged["category"]:
        raise ApiError(400, "Validation failed", {"_schema": ["A rule needs keywords or a category."]})
    changed = audit.diff(rule, changes)
    if changed:
        for name in changed:
            setattr(rule, name, changes[name])
        audit.record(actor, "routing_rule.update", "routing_rule", rule.id, changed)
        db.session.commit()
    return rule


def delete_rule(actor, rule_id):
    rule = get_rule(actor, rule_id)
    audit.record(
        actor,
        "routing_rule.delete",
        "routing_rule",
        rule.id,
        {"department_id": rule.department_id, "keywords": rule.keywords, "category": rule.category},
    )
    db.session.delete(rule)
    db.session.commit()


def list_blocked_terms(actor, *, page, per_page, cursor=None):
    _require_admin(actor)
    return paginate(sa.select(BlockedTerm).order_by(BlockedTerm.term), page=page, per_page=per_page, cursor=cursor)


def add_blocked_term(actor, *, term):
    _require_admin(actor)
    if db.session.scalar(sa.select(BlockedTerm.id).where(BlockedTerm.term == term)) is not None:
        raise ApiError(409, "This term is blocked already", {"term": [term]})
    blocked = BlockedTerm(term=term, created_by=actor.id)
    db.session.add(blocked)
    db.session.flush()
    audit.record(actor, "blocked_term.create", "blocked_term", blocked.id, {"term": term})
    db.session.commit()
    return blocked


def delete_blocked_term(actor, term_id):
    _require_admin(actor)
    blocked = db.session.get(BlockedTerm, term_id)
    if blocked is None:
        raise ApiError(404, "Blocked term not found")
    audit.record(actor, "blocked_term.delete", "blocked_term", blocked.id, {"term": blocked.term})
    db.session.delete(blocked)
    db.session.commit()


# --- Tickets: creation, limits, routing --------------------------------------------------------------------------


def _is_exempt_from_limit(user):
    return user.role == "admin" or db.session.scalar(sa.select(_agent_departments(user.id).exists()))


def _enforce_daily_limit(requester):
    """At most TICKETS_PER_DAY tickets in any 24 hours. The requester's row is locked first, so concurrent creates
    count one after the other; Retry-After is when the window's oldest ticket that matters ages out."""
    lock_rows(User, [requester.id])
    limit = current_app.config["TICKETS_PER_DAY"]
    now = utcnow()
    created = db.session.scalars(
        sa.select(Ticket.created_at)
        .where(Ticket.requester_id == requester.id, Ticket.created_at > now - LIMIT_WINDOW)
        .order_by(Ticket.created_at)
    ).all()
    if len(created) >= limit:
        frees_at = created[len(created) - limit] + LIMIT_WINDOW
        retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
        raise ApiError(
            429,
            f"At most {limit} tickets in 24 hours: try again later",
            {"limit": limit, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
            code="rate_limited",
        )


def _next_number():
    increment = (
        sa.update(TicketCounter)
        .where(TicketCounter.name == "tickets")
        .values(value=TicketCounter.value + 1)
        .returning(TicketCounter.value)
    )
    number = db.session.scalar(increment)
    if number is None:
        db.session.execute(_insert_ignoring_conflicts(TicketCounter).values(name="tickets", value=0))
        number = db.session.scalar(increment)
    return number


def _assign_by_load(ticket, routing):
    """Give the ticket to its department's least loaded agent, or leave it unassigned in the queue."""
    lock_rows(Department, [ticket.department_id])
    chosen = least_loaded_agent(ticket.department_id)
    if chosen is None:
        ticket.assignee_id, ticket.status = None, "open"
        routing["assignee"] = "No agent in the department: unassigned in its queue"
    else:
        agent, active = chosen
        agent.last_assigned_at = utcnow()
        ticket.assignee_id, ticket.status = agent.user_id, "assigned"
        routing["assignee"] = f"The agent with the fewest active tickets ({active}), assigned least recently"
    routing["assignee_id"] = ticket.assignee_id
    ticket.routing = {key: str(value) if isinstance(value, uuid.UUID) else value for key, value in routing.items()}


def _route(ticket):
    chosen_router = router()
    decision = chosen_router.route(ticket)
    department_id = decision.department_id or triage_department().id
    ticket.department_id = department_id
    routing = {
        "router": chosen_router.name,
        "department_id": department_id,
        "department": decision.reason if decision.department_id else f"{decision.reason}: sent to triage",
        "rule_id": decision.rule_id,
        "matched": decision.matched,
    }
    _assign_by_load(ticket, routing)
    sla.start_clock(ticket, utcnow())


def create_ticket(actor, *, title, description, urgency, category=None):
    """A ticket the content check flags is held (no department, no agent) until an admin releases or rejects it;
    the others are routed at once."""
    if not _is_exempt_from_limit(actor):
        _enforce_daily_limit(actor)
    reasons = content_check().reasons(title, description)
    ticket = Ticket(
        number=_next_number(),
        title=title,
        description=description,
        urgency=urgency,
        category=category,
        requester_id=actor.id,
        status="held" if reasons else "open",
        misuse_flag=bool(reasons),
        misuse_reasons=reasons or None,
    )
    db.session.add(ticket)
    db.session.flush()
    ticket.conversation = Conversation(id=uuid.uuid4(), kind="ticket", created_by=actor.id)
    if not reasons:
        _route(ticket)
    audit.record(
        actor,
        "ticket.create",
        "ticket",
        ticket.id,
        {
            "number": ticket.reference,
            "status": ticket.status,
            "department_id": ticket.department_id,
            "assignee_id": ticket.assignee_id,
            "misuse_reasons": reasons,
        },
    )
    chat.ticket_opened(ticket, ticket.conversation.id)
    notices.arrived(actor, ticket)
    events.ticket_created(ticket)
    db.session.commit()
    return _shown_to(actor, ticket, department_role(ticket.department_id, actor.id))


# --- Tickets: reading ------------------------------------------------------------------------------------------


def _shown_to(actor, ticket, role):
    """What of the ticket `actor` sees: the routing decision and the content check's reasons are for staff."""
    return show(ticket, staff=permissions.can_see_routing(actor, role))


def _load(actor, ticket_id, lock=False):
    """The ticket and the actor's role in its department; 404 to whoever may not read it. `lock=True` (every
    change): the row is locked first, so concurrent changes check and write one after the other."""
    if lock:
        lock_rows(Ticket, [ticket_id])
    ticket = db.session.get(Ticket, ticket_id, populate_existing=lock)
    role = department_role(ticket.department_id, actor.id) if ticket is not None else None
    if ticket is None or not permissions.can_read_ticket(actor, ticket, role):
        raise ApiError(404, "Ticket not found")
    return ticket, role


def get_ticket(actor, ticket_id):
    ticket, role = _load(actor, ticket_id)
    return _shown_to(actor, ticket, role)


SORT_COLUMNS = {
    "created_at": Ticket.created_at,
    "updated_at": Ticket.updated_at,
    "number": Ticket.number,
    "urgency": URGENCY_RANK,
    "status": Ticket.status,
}


def _search(text):
    """SQL: the ticket holds every word of `text` (full text), or `text` is its number (`TKT-000123`, `123`)."""
    number = TICKET_NUMBER.match(text.strip())
    if number is None:
        return search.condition(text)
    return sa.or_(search.condition(text), Ticket.number == int(number.group(1)))


def list_tickets(
    actor, *, page, per_page, cursor=None, sort_by, sort_order, mine=False, q=None, breached=None, **filters
):
    """With `q` and `sort_by=relevance`, best match first (a ticket found by its number alone scores 0)."""
    conditions = [permissions.readable_tickets_clause(actor, Ticket, _agent_departments(actor.id))]
    if breached is not None:
        breach = sla.breached_clause(Ticket, utcnow())
        conditions.append(breach if breached else sa.not_(breach))
    for name, value in filters.items():
        conditions.append(getattr(Ticket, name) == value)
    if mine:
        conditions.append(Ticket.requester_id == actor.id)
    if q:
        conditions.append(_search(q))
    statement = sa.select(Ticket).where(*conditions)
    if sort_by == RELEVANCE:
        # Outer: a ticket found by its number alone may hold none of the words.
        statement, column = search.with_relevance(statement, q, keep_unmatched=True)
    else:
        column = SORT_COLUMNS[sort_by]
    order = column.asc() if sort_order == "asc" else column.desc()
    statement = statement.order_by(order, Ticket.number.desc())
    result = paginate(
        statement, page=page, per_page=per_page, cursor=cursor, count_statement=sa.select(Ticket.id).where(*conditions)
    )
    roles = _agent_department_roles(actor.id)
    for ticket in result["items"]:
        _shown_to(actor, ticket, roles.get(ticket.department_id))
    return result


# --- Tickets: changes ------------------------------------------------------------------------------------------


def update_ticket(actor, ticket_id, changes):
    """The requester edits title, description and urgency while the ticket is open (not yet taken by an agent).
    The new text passes the content check or the edit is refused (422)."""
    ticket, role = _load(actor, ticket_id, lock=True)
    permissions.require(permissions.is_requester(actor, ticket), "Only the ticket's requester may edit it")
    if ticket.status != "open":
        raise ApiError(409, "Only an open ticket can be edited", {"status": [ticket.status]})
    text = {"title": ticket.title, "description": ticket.description, **changes}
    reasons = content_check().reasons(text["title"], text["description"])
    if reasons:
        raise ApiError(422, "The new text did not pass the content check", {"_schema": reasons})
    changed = audit.diff(ticket, changes)
    if changed:
        previous_urgency = ticket.urgency
        for name in changed:
            setattr(ticket, name, changes[name])
        sla.retarget(ticket, previous_urgency)
        audit.record(actor, "ticket.update", "ticket", ticket.id, changed)
        events.ticket_updated(ticket)
        db.session.commit()
    return _shown_to(actor, ticket, role)


def _reopen_deadline(ticket):
    return (ticket.resolved_at or ticket.closed_at) + timedelta(days=current_app.config["TICKET_REOPEN_DAYS"])


def change_status(actor, ticket_id, status, resolution=None):
    """`resolution` (only with `resolved`, the schema sees to it) is stored on the ticket; given again to a resolved
    ticket, it replaces the text (staff). A reopen clears it: it did not solve the problem."""
    ticket, role = _load(actor, ticket_id, lock=True)
    current = ticket.status
    if status == current:
        if resolution is not None and resolution != ticket.resolution:
            _replace_resolution(actor, ticket, role, resolution)
        return _shown_to(actor, ticket, role)
    allowed = TRANSITIONS[current]
    if status not in allowed:
        raise ApiError(
            409, f"A ticket cannot go from {current} to {status}", {"status": sorted(allowed)}, code="conflict"
        )
    permissions.require(
        permissions.can_set_ticket_status(actor, ticket, role, allowed[status]), STATUS_REFUSALS[allowed[status]]
    )
    now = utcnow()
    if status == "in_progress" and ticket.assignee_id is None:
        raise ApiError(409, "Assign the ticket before working on it")
    if status == "open":
        if now > _reopen_deadline(ticket):
            raise ApiError(
                409,
                f"A ticket can be reopened up to {current_app.config['TICKET_REOPEN_DAYS']} days after it ended",
                {"reopen_until": _reopen_deadline(ticket).isoformat()},
            )
        ticket.resolved_at = ticket.closed_at = ticket.resolution = None
    elif status == "resolved":
        ticket.resolved_at = now
        ticket.resolution = resolution
    elif status == "closed":
        ticket.closed_at = now
    sla.on_status_change(ticket, current, status, now, by_staff=permissions.can_work_ticket(actor, role))
    ticket.status = status
    changes = {"status": {"from": current, "to": status}}
    if resolution is not None:
        changes["resolution"] = resolution
    audit.record(actor, "ticket.status", "ticket", ticket.id, changes)
    notices.status_changed(actor, ticket, current)
    events.ticket_updated(ticket)
    db.session.commit()
    return _shown_to(actor, ticket, role)


def _replace_resolution(actor, ticket, role, resolution):
    permissions.require(permissions.can_work_ticket(actor, role), STATUS_REFUSALS["staff"])
    audit.record(
        actor, "ticket.resolution", "ticket", ticket.id, {"resolution": {"from": ticket.resolution, "to": resolution}}
    )
    ticket.resolution = resolution
    db.session.commit()


def _require_active(ticket):
    if ticket.status not in ACTIVE_STATUSES:
        raise ApiError(409, f"A {ticket.status} ticket cannot be assigned or re-routed", {"status": [ticket.status]})


def assign(actor, ticket_id, assignee_id):
    ticket, role = _load(actor, ticket_id, lock=True)
    permissions.require(
        permissions.can_assign_ticket(actor, role), "Only the department's leads or an admin may assign tickets"
    )
    _require_active(ticket)
    agent = db.session.get(DepartmentAgent, (ticket.department_id, assignee_id))
    if agent is None or not agent.user.is_active:
        raise ApiError(400, "Validation failed", {"assignee_id": ["Not an active agent of the ticket's department."]})
    previous = ticket.assignee_id
    if previous != assignee_id:
        agent.last_assigned_at = utcnow()
        ticket.assignee_id = assignee_id
        if ticket.status == "open":
            ticket.status = "assigned"
        ticket.routing = {
            **(ticket.routing or {}),
            "assignee": f"Assigned by {actor.username}",
            "assignee_id": str(assignee_id),
        }
        audit.record(
            actor, "ticket.assign", "ticket", ticket.id, {"assignee_id": {"from": previous, "to": assignee_id}}
        )
        chat.ticket_assigned(ticket, ticket.conversation.id)
        notices.assigned(actor, ticket)
        events.ticket_updated(ticket)
        db.session.commit()
    return _shown_to(actor, ticket, role)


def reroute(actor, ticket_id, department_id):
    """Moves an active ticket to another department, where it is assigned by load like a new one."""
    ticket, role = _load(actor, ticket_id, lock=True)
    permissions.require(
        permissions.can_work_ticket(actor, role), "Only the department's agents or an admin may re-route a ticket"
    )
    _require_active(ticket)
    _require_department_exists(department_id)
    previous, previous_assignee = ticket.department_id, ticket.assignee_id
    if previous != department_id:
        ticket.department_id = department_id
        routing = {
            "router": None,
            "department_id": department_id,
            "department": f"Re-routed by {actor.username}",
            "rule_id": None,
            "matched": [],
        }
        _assign_by_load(ticket, routing)
        audit.record(
            actor,
            "ticket.reroute",
            "ticket",
            ticket.id,
            {"department_id": {"from": previous, "to": department_id}, "assignee_id": ticket.assignee_id},
        )
        chat.ticket_rerouted(ticket, ticket.conversation.id, previous, previous_assignee)
        notices.arrived(actor, ticket, how="Ticket re-routed")
        events.ticket_updated(ticket, previous_department_id=previous)
        db.session.commit()
    return _shown_to(actor, ticket, department_role(ticket.department_id, actor.id))


def give_feedback(actor, ticket_id, *, rating, comment=None):
    ticket, role = _load(actor, ticket_id, lock=True)
    permissions.require(permissions.is_requester(actor, ticket), "Only the ticket's requester may rate it")
    if ticket.resolved_at is None or ticket.status not in ("resolved", "closed"):
        raise ApiError(409, "Feedback is given once the ticket is resolved", {"status": [ticket.status]})
    if ticket.feedback_at is not None:
        raise ApiError(409, "Feedback was given already")
    ticket.feedback_rating, ticket.feedback_comment, ticket.feedback_at = rating, comment, utcnow()
    audit.record(actor, "ticket.feedback", "ticket", ticket.id, {"rating": rating, "comment": comment})
    events.ticket_updated(ticket)
    db.session.commit()
    return _shown_to(actor, ticket, role)


def _held(actor, ticket_id):
    ticket, role = _load(actor, ticket_id, lock=True)
    _require_admin(actor)
    if ticket.status != "held":
        raise ApiError(409, "Only a held ticket can be released or rejected", {"status": [ticket.status]})
    return ticket, role


def release(actor, ticket_id):
    """An admin found the held ticket fine: it is routed as a new one would be (its misuse flag stays, as history)."""
    ticket, role = _held(actor, ticket_id)
    _route(ticket)
    audit.record(
        actor,
        "ticket.release",
        "ticket",
        ticket.id,
        {"department_id": ticket.department_id, "assignee_id": ticket.assignee_id},
    )
    chat.ticket_opened(ticket, ticket.conversation.id)
    notices.arrived(actor, ticket, how="Ticket released")
    notices.status_changed(actor, ticket, "held")
    events.ticket_updated(ticket)
    db.session.commit()
    return _shown_to(actor, ticket, role)


def reject(actor, ticket_id):
    ticket, role = _held(actor, ticket_id)
    ticket.status, ticket.closed_at = "rejected", utcnow()
    audit.record(actor, "ticket.reject", "ticket", ticket.id, {"status": {"from": "held", "to": "rejected"}})
    notices.status_changed(actor, ticket, "held")
    events.ticket_updated(ticket)
    db.session.commit()
    return _shown_to(actor, ticket, role)
