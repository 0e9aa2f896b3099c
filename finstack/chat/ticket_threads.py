"""Ticket threads: the conversation every ticket has (kind "ticket"), who reads it and which rooms it speaks in.

Readers are whoever may read the ticket (`permissions.can_read_ticket`): its requester, the agents and leads of its
department, admins. Internal notes (`internal: true`) are for the ticket's staff only (`permissions.is_ticket_staff`:
never its requester). Rooms:
- `conversation:<id>` (public): the requester's, the assignee's and the department leads' sockets join it at connect
  while the ticket is active; other readers' sockets when they open the conversation. Public messages, typing and
  read receipts of public messages go there.
- `conversation-staff:<id>`: the same staff sockets, never the requester's. Internal notes and the read receipts
  that name one go there.
"""

import sqlalchemy as sa

from finstack.chat.models import Conversation
from finstack.core import permissions
from finstack.core.events import conversation_room, conversation_staff_room
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tickets.access import agent_departments, lead_departments, readable_ticket
from finstack.tickets.models import ACTIVE_STATUSES, Ticket


def require_reader(user, conversation):
    """The ticket and the user's role in its department, if `user` may read the ticket; else 404."""
    ticket, role = readable_ticket(user, conversation.ticket_id)
    if ticket is None:
        raise ApiError(404, "Conversation not found")
    return ticket, role


def sees_internal(user, conversation):
    """May `user` (a reader) see and write the conversation's internal notes? Only ticket threads have them."""
    if conversation.kind != "ticket":
        return False
    ticket, role = readable_ticket(user, conversation.ticket_id)
    return ticket is not None and permissions.is_ticket_staff(user, ticket, role)


def rooms_at_connect(user):
    """`(public rooms, staff rooms)` of the active tickets `user` requested, holds or whose department they lead.

    Bounded by the active statuses; one query. Other agents of the department join when they open a conversation.
    """
    participant = sa.or_(
        Ticket.requester_id == user.id,
        Ticket.assignee_id == user.id,
        Ticket.department_id.in_(lead_departments(user.id)),
    )
    staff = permissions.ticket_staff_clause(user, Ticket, agent_departments(user.id))
    rows = db.session.execute(
        sa.select(Conversation.id, staff.label("staff"))
        .join(Ticket, Ticket.id == Conversation.ticket_id)
        .where(Ticket.status.in_(ACTIVE_STATUSES), participant)
        .order_by(Conversation.id)
    ).all()
    public = [conversation_room(row.id) for row in rows]
    return public, [conversation_staff_room(row.id) for row in rows if row.staff]


def conversation_of(ticket_id):
    return db.session.scalar(sa.select(Conversation).where(Conversation.ticket_id == ticket_id))
