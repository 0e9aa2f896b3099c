"""The ticket side of the in-ticket chat: what a message in a ticket's conversation does to the ticket, and whose
live sockets are in its rooms as the ticket moves.

- A public reply from the ticket's staff (`permissions.is_ticket_staff`) stamps the first response (`sla`) and
  notifies the requester; a requester's message notifies the assignee, or the department's leads while nobody holds
  the ticket (`ticket_replied`). Internal notes do neither. Both happen in the sending transaction
  (`chat.signals.message_sent`), so a message that is not stored changes and tells nothing.
- Rooms (`chat.ticket_threads`): on creation and release the requester's sockets join the public room, the
  assignee's and the department leads' both rooms; an assignment adds the new assignee's; a re-route takes the old
  department's people out (unless they still read it) and brings the new assignee and leads in; an agent removed
  from a department leaves the rooms of its active tickets. After commit.
"""

import sqlalchemy as sa

from finstack import realtime
from finstack.chat.models import Conversation
from finstack.chat.signals import message_sent
from finstack.core import permissions
from finstack.core.events import after_commit, ticket_thread_rooms
from finstack.core.locks import lock_rows
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.tickets import sla
from finstack.tickets.access import active_leads, department_agent_ids, department_role
from finstack.tickets.models import ACTIVE_STATUSES, Ticket
from finstack.users.models import User

NOTIFICATION_TYPE = "ticket_replied"
EXCERPT = 200


def reply_drafts(ticket, recipient_ids, author, content):
    """The `ticket_replied` notifications of one message: one place, so that every reply reads the same."""
    title = f"New reply on {ticket.reference}"
    excerpt = content if len(content) <= EXCERPT else content[: EXCERPT - 1] + "…"
    message = f"{author.full_name} wrote on \u201c{ticket.title}\u201d: {excerpt or '(a file)'}"
    return [
        Draft(user_id=user_id, type=NOTIFICATION_TYPE, title=title, message=message, ticket_id=ticket.id)
        for user_id in recipient_ids
    ]


@message_sent.connect
def _on_message_sent(sender, conversation, message, author):
    if conversation.kind != "ticket" or message.internal:
        return
    # The conversation row is locked already (send_message), so the lock order is conversation → ticket.
    lock_rows(Ticket, [conversation.ticket_id])
    ticket = db.session.get(Ticket, conversation.ticket_id, populate_existing=True)
    if permissions.is_ticket_staff(author, ticket, department_role(ticket.department_id, author.id)):
        sla.stamp_first_response(ticket, message.created_at)
        recipients = [ticket.requester_id]
    elif ticket.assignee_id is not None:
        recipients = [ticket.assignee_id]
    else:
        recipients = active_leads([ticket.department_id]).get(ticket.department_id, [])
    notify(reply_drafts(ticket, recipients, author, message.content), actor=author)


# --- Rooms -------------------------------------------------------------------------------------------------------


def _move_after_commit(joining=(), leaving=()):
    """`joining` / `leaving`: `(user_id, rooms)` pairs, applied to live sockets once the transaction commits."""
    joining, leaving = list(joining), list(leaving)

    def move():
        for user_id, names in leaving:
            realtime.leave_user(user_id, names)
        for user_id, names in joining:
            realtime.join_user(user_id, names)

    if joining or leaving:
        after_commit(move)


def _staff_ids(ticket):
    """Who joins a ticket's rooms at once: its assignee and its department's active leads (not its requester)."""
    leads = active_leads([ticket.department_id]).get(ticket.department_id, []) if ticket.department_id else []
    people = dict.fromkeys([ticket.assignee_id, *leads])
    return [user_id for user_id in people if user_id not in (None, ticket.requester_id)]


def ticket_opened(ticket, conversation_id):
    """A ticket was created (its requester joins; if routed, its assignee and leads too) or released."""
    joining = [(ticket.requester_id, ticket_thread_rooms(conversation_id, staff=False))]
    if ticket.department_id is not None:
        joining += [(user_id, ticket_thread_rooms(conversation_id, staff=True)) for user_id in _staff_ids(ticket)]
    _move_after_commit(joining)


def ticket_assigned(ticket, conversation_id):
    if ticket.assignee_id not in (None, ticket.requester_id):
        _move_after_commit([(ticket.assignee_id, ticket_thread_rooms(conversation_id, staff=True))])


def ticket_rerouted(ticket, conversation_id, previous_department_id, previous_assignee_id):
    """The old department's agents and leads and the old assignee leave both rooms, unless they still read the ticket
    as staff (admins, agents of both departments) or are its requester (who only ever is in the public room). The new
    assignee and leads join."""
    before = {*department_agent_ids(previous_department_id), previous_assignee_id} - {None, ticket.requester_id}
    still = {*department_agent_ids(ticket.department_id), ticket.assignee_id}
    admins = set(db.session.scalars(sa.select(User.id).where(User.id.in_(before), User.role == "admin")))
    both = ticket_thread_rooms(conversation_id, staff=True)
    leaving = [(user_id, both) for user_id in sorted(before - still - admins)]
    joining = [(user_id, both) for user_id in _staff_ids(ticket)]
    _move_after_commit(joining, leaving)


def agent_removed(department_id, user):
    """`user` no longer works in the department: their sockets leave the rooms of its active tickets (but for the
    tickets they requested, whose public room they keep; admins read every ticket and stay)."""
    if user.role == "admin":
        return
    conversation_ids = db.session.scalars(
        sa.select(Conversation.id)
        .join(Ticket, Ticket.id == Conversation.ticket_id)
        .where(
            Ticket.department_id == department_id,
            Ticket.status.in_(ACTIVE_STATUSES),
            Ticket.requester_id != user.id,
        )
    )
    names = [name for conversation_id in conversation_ids for name in ticket_thread_rooms(conversation_id, staff=True)]
    if names:
        _move_after_commit(leaving=[(user.id, names)])
