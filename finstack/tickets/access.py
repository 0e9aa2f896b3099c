"""Where a user stands on a ticket: their role in its department, the departments they work in or lead.

Below `tickets.service`, so that the domains hanging off tickets (the in-ticket chat) can ask without importing the
ticket service, which announces to them instead (`chat.signals`).
"""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.extensions import db
from finstack.tickets.models import DepartmentAgent, Ticket
from finstack.users.models import User


def department_role(department_id, user_id):
    """The user's role in the department ("agent", "lead") or None."""
    if department_id is None:
        return None
    return db.session.scalar(
        sa.select(DepartmentAgent.role).where(
            DepartmentAgent.department_id == department_id, DepartmentAgent.user_id == user_id
        )
    )


def agent_departments(user_id):
    """SQL: the ids of the departments the user works in (as agent or lead)."""
    return sa.select(DepartmentAgent.department_id).where(DepartmentAgent.user_id == user_id)


def lead_departments(user_id):
    """SQL: the ids of the departments the user leads."""
    return agent_departments(user_id).where(DepartmentAgent.role == "lead")


def active_leads(department_ids):
    """{department id: [active lead ids]}"""
    leads = {}
    if department_ids:
        rows = db.session.execute(
            sa.select(DepartmentAgent.department_id, DepartmentAgent.user_id)
            .join(User, User.id == DepartmentAgent.user_id)
            .where(
                DepartmentAgent.department_id.in_(department_ids),
                DepartmentAgent.role == "lead",
                User.is_active.is_(True),
            )
            .order_by(DepartmentAgent.user_id)
        )
        for department_id, user_id in rows:
            leads.setdefault(department_id, []).append(user_id)
    return leads


def department_agent_ids(department_id):
    """Everyone working in the department (agents and leads)."""
    return list(
        db.session.scalars(sa.select(DepartmentAgent.user_id).where(DepartmentAgent.department_id == department_id))
    )


def readable_ticket(user, ticket_id):
    """`(ticket, the user's department role)` if `user` may read the ticket (`permissions.can_read_ticket`), else
    `(None, None)`."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return None, None
    role = department_role(ticket.department_id, user.id)
    if not permissions.can_read_ticket(user, ticket, role):
        return None, None
    return ticket, role
