"""The helpdesk's notifications: who hears of what happens to a ticket (stored, pushed live, e-mailed per preference
by `notifications.service.notify`, which never tells the actor and drops what the recipient may not read).

    ticket_created         a ticket arrives in a department's queue (filed, released from review, re-routed there):
                           to its active agents and leads, but the one it was assigned to, who gets ticket_assigned;
                           a held ticket: to the active admins, who release or reject it
    ticket_assigned        to the agent a ticket was given to: by the router (at filing, release, re-routing) or by
                           a lead or admin
    ticket_status_changed  staff changed the status (release and reject included): to the requester; the requester
                           changed it (closed, reopened, answered): to the assignee
"""

import sqlalchemy as sa

from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.tickets.models import Department, DepartmentAgent
from finstack.users.models import User

CREATED = "ticket_created"
ASSIGNED = "ticket_assigned"
STATUS_CHANGED = "ticket_status_changed"


def _words(status):
    return status.replace("_", " ")


def _subject(ticket):
    return f"{ticket.reference} {ticket.title}"


def _department_name(ticket):
    """From the identity map: `ticket.department` may still be the one before a re-routing."""
    return db.session.get(Department, ticket.department_id).name


def _active(statement):
    return list(db.session.scalars(statement.where(User.is_active.is_(True)).order_by(User.id)))


def _department_staff(department_id):
    return _active(
        sa.select(DepartmentAgent.user_id)
        .join(User, User.id == DepartmentAgent.user_id)
        .where(DepartmentAgent.department_id == department_id)
    )


def _admins():
    return _active(sa.select(User.id).where(User.role == "admin"))


def arrived(actor, ticket, how="New ticket"):
    """The ticket was just routed into its department's queue (or held): the queue's staff, or the admins, hear of
    it, and its assignee of the assignment."""
    if ticket.status == "held":
        drafts = [
            Draft(
                user_id,
                CREATED,
                f"Ticket held for review: {_subject(ticket)}",
                f"{ticket.reference} ({ticket.urgency}) was held by the content check: release or reject it.",
                ticket_id=ticket.id,
            )
            for user_id in _admins()
        ]
    else:
        department = _department_name(ticket)
        drafts = [
            Draft(
                user_id,
                CREATED,
                f"{how} in {department}: {_subject(ticket)}",
                f"{ticket.reference} ({ticket.urgency}) is in the {department} queue"
                + (", unassigned." if ticket.assignee_id is None else "."),
                ticket_id=ticket.id,
            )
            for user_id in _department_staff(ticket.department_id)
            if user_id != ticket.assignee_id
        ]
    notify([*drafts, *_assignment(ticket)], actor)


def _assignment(ticket):
    if ticket.assignee_id is None:
        return []
    return [
        Draft(
            ticket.assignee_id,
            ASSIGNED,
            f"Ticket assigned to you: {_subject(ticket)}",
            f"{ticket.reference} ({ticket.urgency}, {_department_name(ticket)}) is now yours.",
            ticket_id=ticket.id,
        )
    ]


def assigned(actor, ticket):
    notify(_assignment(ticket), actor)


def status_changed(actor, ticket, previous):
    """Call once `ticket.status` is the new one; `previous` was the old."""
    recipient = ticket.assignee_id if actor.id == ticket.requester_id else ticket.requester_id
    if recipient is None:
        return
    draft = Draft(
        recipient,
        STATUS_CHANGED,
        f"Ticket {_words(ticket.status)}: {_subject(ticket)}",
        f"{ticket.reference} went from {_words(previous)} to {_words(ticket.status)}.",
        ticket_id=ticket.id,
    )
    notify([draft], actor)
