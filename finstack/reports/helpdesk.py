"""The helpdesk report (issue 10 item 9): per department, tickets by status, median resolution time and average
feedback over the tickets created in a date range; per agent, their load (active tickets assigned, now).

Admins see every department, leads the departments they lead, others are refused (403). Figures are SQL aggregates;
medians use `core.sql.medians` (window functions, the same on SQLite and PostgreSQL). Resolution time is
`resolved_at - created_at` over the tickets resolved (a reopened ticket counts its last resolution), first response
`first_responded_at - created_at`. SLA compliance: the share of the tickets with an SLA clock that breached neither
target (recorded or live, `tickets.sla.breached_clause`).
"""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.sql import count_where, hours_between, medians
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tickets import sla
from finstack.tickets.models import ACTIVE_STATUSES, STATUSES, Department, DepartmentAgent, Ticket
from finstack.users.models import User

# Row values that the report shows transformed (or not at all).
DERIVED = ("median_hours", "first_response_hours", "with_clock", "met", "average_feedback")


def _hours(value):
    return round(float(value), 2) if value is not None else None


def _departments_clause(actor, department_id):
    lead_departments = sa.select(DepartmentAgent.department_id).where(
        DepartmentAgent.user_id == actor.id, DepartmentAgent.role == "lead"
    )
    leads_any = db.session.scalar(sa.select(sa.exists(lead_departments)))
    permissions.require(
        permissions.can_see_helpdesk_report(actor, leads_any), "Only admins and department leads see this report"
    )
    if department_id is not None:
        leads_it = db.session.scalar(
            sa.select(sa.exists(lead_departments.where(DepartmentAgent.department_id == department_id)))
        )
        permissions.require(
            permissions.can_see_helpdesk_report(actor, leads_it), "You do not lead this department"
        )
        return Department.id == department_id
    return permissions.helpdesk_report_departments_clause(actor, Department, lead_departments)


def _median_hours(period, stamp, name):
    """Per department, the median hours from a ticket's creation to `stamp`, over the tickets that have it."""
    durations = (
        sa.select(Ticket.department_id.label("key"), hours_between(stamp, Ticket.created_at).label("hours"))
        .where(*period, stamp.is_not(None))
        .subquery(f"{name}_durations")
    )
    return medians(durations, name)


def _departments(scope, period):
    resolution = _median_hours(period, Ticket.resolved_at, "resolution")
    first_response = _median_hours(period, Ticket.first_responded_at, "first_response")
    with_clock = Ticket.first_response_due_at.is_not(None)
    met = sa.and_(with_clock, sa.not_(sla.breached_clause(Ticket, utcnow())))
    rows = db.session.execute(
        sa.select(
            Department.id.label("department_id"),
            Department.name.label("department"),
            sa.func.count(Ticket.id).label("total"),
            *(count_where(Ticket.status == status).label(status) for status in STATUSES),
            resolution.c.median_hours,
            first_response.c.median_hours.label("first_response_hours"),
            count_where(with_clock).label("with_clock"),
            count_where(met).label("met"),
            sa.func.avg(Ticket.feedback_rating).label("average_feedback"),
            sa.func.count(Ticket.feedback_rating).label("feedback_count"),
        )
        .outerjoin(Ticket, sa.and_(Ticket.department_id == Department.id, *period))
        .outerjoin(resolution, resolution.c.key == Department.id)
        .outerjoin(first_response, first_response.c.key == Department.id)
        .where(scope)
        .group_by(Department.id, Department.name, resolution.c.median_hours, first_response.c.median_hours)
        .order_by(Department.name, Department.id)
    ).mappings()
    return [
        {
            **{key: value for key, value in row.items() if key not in DERIVED},
            "median_resolution_hours": _hours(row["median_hours"]),
            "median_first_response_hours": _hours(row["first_response_hours"]),
            "sla_compliance": round(100 * row["met"] / row["with_clock"], 2) if row["with_clock"] else None,
            "average_feedback": _hours(row["average_feedback"]),
        }
        for row in rows
    ]


def _agents(scope):
    active = sa.and_(
        Ticket.assignee_id == DepartmentAgent.user_id,
        Ticket.department_id == DepartmentAgent.department_id,
        Ticket.status.in_(ACTIVE_STATUSES),
    )
    return db.session.execute(
        sa.select(
            Department.id.label("department_id"),
            Department.name.label("department"),
            User.id.label("user_id"),
            User.username,
            User.full_name,
            DepartmentAgent.role,
            sa.func.count(Ticket.id).label("active_tickets"),
        )
        .select_from(DepartmentAgent)
        .join(Department, Department.id == DepartmentAgent.department_id)
        .join(User, User.id == DepartmentAgent.user_id)
        .outerjoin(Ticket, active)
        .where(scope)
        .group_by(Department.id, Department.name, User.id, User.username, User.full_name, DepartmentAgent.role)
        .order_by(Department.name, sa.func.count(Ticket.id).desc(), User.username)
    ).mappings().all()


def helpdesk_report(actor, *, department_id=None, date_from=None, date_to=None):
    scope = _departments_clause(actor, department_id)
    period = []
    if date_from is not None:
        period.append(Ticket.created_at >= date_from)
    if date_to is not None:
        period.append(Ticket.created_at <= date_to)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "departments": _departments(scope, period),
        "agents": _agents(scope),
    }
