"""Ticket events for live clients, emitted only if the transaction commits.

    ticket_created  TicketOut, when a ticket is filed
    ticket_updated  TicketOut (as committed): edited, status changed, assigned, re-routed, rated, released or
                    rejected, requeued (its agent left the department), SLA breach recorded by the sweep

Each goes as its recipients may see it (`schemas.show`, `schemas.as_seen_by_others`): the staff view (with `routing`
and `misuse_reasons`) to the ticket's `department:<id>` room, and, while it is held (no department yet), to every
active admin's `user:<id>` room (the review queue); the requester's view (both null) to the requester's `user:<id>`
room — unless the requester may see the staff view (an agent of the department, an admin), who then gets that one,
once.
A re-routed ticket's old department hears only `{id, number, department}`: it may no longer read the ticket, and
that is enough to take it out of its queue.

Agents' and leads' sockets join their departments' rooms at connect (`department_rooms`); an agent added to a
department has their live sockets join its room at once, and leave it when removed.

Call the functions from the ticket service after the change is applied and before `db.session.commit()`: they flush,
so the payload carries the new `updated_at`; the service then shows the ticket to its actor again (`_shown_to`).
"""

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from finstack import realtime, webhooks
from finstack.chat.models import Conversation
from finstack.core import event_log, permissions
from finstack.core.events import (
    after_commit,
    deliver_batch_after_commit,
    department_room,
    emit_batch_after_commit,
    user_room,
)
from finstack.core.sql import in_values
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tickets import signals
from finstack.tickets.models import Department, DepartmentAgent, Ticket
from finstack.tickets.schemas import TicketOut, as_seen_by_others, staff_row, views_in_sql
from finstack.users.models import User

TICKET_CREATED = "ticket_created"
TICKET_UPDATED = "ticket_updated"
LOAD_CHUNK = 1_000


def department_rooms(user_id):
    """The `department:<id>` rooms of the departments `user_id` works in (their sockets join them at connect)."""
    return [
        department_room(department_id)
        for department_id in db.session.scalars(
            sa.select(DepartmentAgent.department_id).where(DepartmentAgent.user_id == user_id)
        )
    ]


def agent_added(department_id, user_id):
    room = department_room(department_id)
    after_commit(lambda: realtime.join_user(user_id, [room]))


def agent_removed(department_id, user_id):
    room = department_room(department_id)
    after_commit(lambda: realtime.leave_user(user_id, [room]))


def _requesters_seeing_staff_view(tickets):
    """{ticket id} of the tickets whose requester may see the staff view: one query for all of them."""
    pairs = {(ticket.department_id, ticket.requester_id) for ticket in tickets if ticket.department_id is not None}
    roles = {}
    if pairs:
        rows = db.session.execute(
            sa.select(DepartmentAgent.department_id, DepartmentAgent.user_id, DepartmentAgent.role).where(
                DepartmentAgent.user_id.in_({user_id for _, user_id in pairs}),
                DepartmentAgent.department_id.in_({department_id for department_id, _ in pairs}),
            )
        )
        roles = {(row.department_id, row.user_id): row.role for row in rows}
    return {
        ticket.id
        for ticket in tickets
        if permissions.can_see_routing(ticket.requester, roles.get((ticket.department_id, ticket.requester_id)))
    }


def _admin_rooms():
    admins = sa.select(User.id).where(User.role == "admin", User.is_active.is_(True)).order_by(User.id)
    return [user_room(user_id) for user_id in db.session.scalars(admins)]


def _messages(event, tickets):
    """`(event, payload, rooms)` for each ticket: dumped once, in the staff view, the requester's view derived. The
    staff view is also published to the webhooks subscribed to `event` (admins configure them)."""
    staff_requesters = _requesters_seeing_staff_view(tickets)
    admin_rooms = _admin_rooms() if any(ticket.department_id is None for ticket in tickets) else []
    schema = TicketOut()
    messages = []
    staff_views = []
    for ticket in tickets:
        staff_view = schema.dump(staff_row(ticket))
        staff_views.append(staff_view)
        rooms = [department_room(ticket.department_id)] if ticket.department_id is not None else admin_rooms
        requester_room = user_room(ticket.requester_id)
        if ticket.id in staff_requesters:
            rooms = [*rooms, requester_room]
        else:
            messages.append((event, as_seen_by_others(staff_view), [requester_room]))
        if rooms:
            messages.append((event, staff_view, list(dict.fromkeys(rooms))))
    webhooks.publish_many(event, staff_views)
    return messages


def _as_committed(ticket):
    """Flush, and reload the relationships a changed foreign key left stale (a new assignee or department)."""
    db.session.flush()  # updated_at and defaults as they will be committed
    db.session.expire(ticket, ["department", "assignee"])
    return ticket


def ticket_created(ticket):
    emit_batch_after_commit(_messages(TICKET_CREATED, [_as_committed(ticket)]))


def ticket_updated(ticket, previous_department_id=None):
    """`previous_department_id`: the department a re-routed ticket left, told that it did."""
    messages = _messages(TICKET_UPDATED, [_as_committed(ticket)])
    if previous_department_id is not None and previous_department_id != ticket.department_id:
        left = {
            "id": str(ticket.id),
            "number": ticket.reference,
            "department": {"id": str(ticket.department_id), "name": ticket.department.name},
        }
        messages.append((TICKET_UPDATED, left, [department_room(previous_department_id)]))
    emit_batch_after_commit(messages)


def tickets_updated(ticket_ids):
    """`ticket_updated` for each of `ticket_ids`, changed by a set-based UPDATE: on PostgreSQL in one statement
    (`updated_in_sql`); elsewhere loaded afresh, LOAD_CHUNK at a time (three queries per chunk)."""
    ticket_ids = list(ticket_ids)
    if db.session.get_bind().dialect.name == "postgresql":
        updated_in_sql(ticket_ids)
    else:
        updated_from_orm(ticket_ids)


def updated_from_orm(ticket_ids):
    """`tickets_updated`, the tickets loaded through the ORM and dumped by `_messages`."""
    messages = []
    for start in range(0, len(ticket_ids), LOAD_CHUNK):
        tickets = db.session.scalars(
            sa.select(Ticket)
            .where(Ticket.id.in_(ticket_ids[start : start + LOAD_CHUNK]))
            .order_by(Ticket.number)
            .execution_options(populate_existing=True)
        ).all()
        messages.extend(_messages(TICKET_UPDATED, tickets))
    emit_batch_after_commit(messages)


def updated_in_sql(ticket_ids):
    """PostgreSQL: what `_messages` and `emit_batch_after_commit` do for `ticket_ids`, the database building the views
    (`schemas.views_in_sql`), deciding who gets which, and recording the events (`event_log.record_from`) in one
    statement; Python receives each ticket's staff view and its events' seqs, for the webhooks and the pushes after
    commit, which go as `_messages`'s would (requester's view first, then the staff view with its rooms)."""
    if not ticket_ids:
        return
    now = utcnow()
    requester, assignee, admin = aliased(User), aliased(User), aliased(User)
    staff_view, others_view = views_in_sql(Ticket, requester, Department, assignee, Conversation, now)
    sees_staff = permissions.routing_viewers_clause(requester, Ticket.department_id, DepartmentAgent)
    tickets = (
        sa.select(
            Ticket.id,
            Ticket.number,
            Ticket.department_id,
            Ticket.requester_id,
            sees_staff.label("sees_staff"),
            staff_view.label("staff_view"),
            others_view.label("others_view"),
        )
        .join(requester, requester.id == Ticket.requester_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .outerjoin(Department, Department.id == Ticket.department_id)
        .outerjoin(Conversation, Conversation.ticket_id == Ticket.id)
        .where(in_values(Ticket.id, ticket_ids))
        .cte("updated_tickets")
    )
    t = tickets.c
    # The requester: the staff view if they may see it (scoped to the department's room it also goes to), else theirs.
    to_requester = sa.select(
        t.requester_id.label("user_id"),
        sa.case((t.sees_staff, t.staff_view), else_=t.others_view).label("payload"),
        sa.case(
            (sa.and_(t.sees_staff, t.department_id.is_not(None)), "department:" + sa.cast(t.department_id, sa.Text)),
            else_=sa.null(),
        ).label("scope"),
        t.number.label("position"),
    )
    # A held ticket's staff view: every active admin (the requester counted once).
    to_admins = (
        sa.select(admin.id, t.staff_view, sa.null(), t.number)
        .select_from(tickets)
        .join(admin, sa.true())
        .where(
            t.department_id.is_(None),
            admin.role == "admin",
            admin.is_active.is_(True),
            sa.or_(sa.not_(t.sees_staff), admin.id != t.requester_id),
        )
    )
    source = sa.union_all(to_requester, to_admins).cte("ticket_event_rows")
    events = event_log.record_from(
        TICKET_UPDATED, source, source.c.payload, now, scope=source.c.scope, order_by=source.c.position
    )
    ticket_id = events.c.payload["id"].as_string()
    by_ticket = (
        sa.select(
            ticket_id.label("ticket_id"),
            sa.func.json_agg(sa.func.json_build_array(events.c.user_id, events.c.seq)).label("recorded"),
        )
        .group_by(ticket_id)
        .cte("ticket_event_seqs")
    )
    rows = db.session.execute(
        sa.select(t.department_id, t.requester_id, t.sees_staff, t.staff_view, by_ticket.c.recorded)
        .outerjoin(by_ticket, by_ticket.c.ticket_id == sa.cast(t.id, sa.Text))
        .order_by(t.number)
    ).all()
    deliveries, staff_views = [], []
    for row in rows:
        recorded = {uuid.UUID(user_id): seq for user_id, seq in row.recorded or ()}
        staff_views.append(row.staff_view)
        if not row.sees_staff:
            seq = recorded.pop(row.requester_id)
            deliveries.append((as_seen_by_others(row.staff_view), [(str(row.requester_id), seq)], []))
        rooms = [] if row.department_id is None else [department_room(row.department_id)]
        if rooms or recorded:
            seqs = [(str(user_id), seq) for user_id, seq in sorted(recorded.items())]
            deliveries.append((row.staff_view, seqs, rooms))
    webhooks.publish_many(TICKET_UPDATED, staff_views)
    deliver_batch_after_commit(TICKET_UPDATED, deliveries)


@signals.breaches_recorded.connect
def _on_breaches_recorded(sender, ticket_ids, **extra):
    tickets_updated(ticket_ids)
