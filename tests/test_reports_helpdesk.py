"""GET /api/reports/helpdesk: who sees which departments, the figures on a hand-made dataset, the date range, CSV."""

import csv
import io
import itertools
from datetime import timedelta

import pytest

from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tickets.models import Department, DepartmentAgent, Ticket

URL = "/api/reports/helpdesk"
_numbers = itertools.count(100_000)


@pytest.fixture
def desk(app, make_user, admin):
    """Alpha (a lead, agents one and two) and Beta (agent three), with tickets whose figures are worked out below."""
    now = utcnow()
    desk = type("Desk", (), {})()
    desk.admin, desk.requester = admin, make_user()
    desk.alpha, desk.beta = Department(name="Alpha"), Department(name="Beta")
    db.session.add_all([desk.alpha, desk.beta])
    db.session.flush()
    desk.lead, desk.one, desk.two, desk.three = make_user(), make_user(), make_user(), make_user()
    for department, user, role in (
        (desk.alpha, desk.lead, "lead"),
        (desk.alpha, desk.one, "agent"),
        (desk.alpha, desk.two, "agent"),
        (desk.beta, desk.three, "agent"),
    ):
        db.session.add(DepartmentAgent(department_id=department.id, user_id=user.id, role=role))

    def ticket(department, status, days_ago=1, resolved_after=None, rating=None, assignee=None, responded=None):
        """`responded`: (hours to the first response, whether it was late): the ticket then has an SLA clock."""
        created = now - timedelta(days=days_ago)
        clock = {}
        if responded is not None:
            hours, late = responded
            clock = {
                "first_response_due_at": created + timedelta(hours=3),
                "resolution_due_at": created + timedelta(hours=24),
                "first_responded_at": created + timedelta(hours=hours),
                "first_response_breached_at": created + timedelta(hours=hours) if late else None,
            }
        db.session.add(
            Ticket(
                number=next(_numbers),
                title="Something broke",
                description="Something broke and stays broken.",
                urgency="low",
                status=status,
                requester_id=desk.requester.id,
                department_id=department.id,
                assignee_id=assignee.id if assignee else None,
                resolved_at=created + timedelta(hours=resolved_after) if resolved_after is not None else None,
                feedback_rating=rating,
                created_at=created,
                **clock,
            )
        )

    # Alpha in the range: resolved after 2, 4 and 10 hours (median 4), ratings 5 and 2 (mean 3.5), three active;
    # first responses after 1, 2 and 6 hours (median 2), the last one late: 2 of 3 clocks met (66.67 %).
    ticket(desk.alpha, "resolved", resolved_after=2, rating=5, responded=(1, False))
    ticket(desk.alpha, "resolved", resolved_after=4, rating=2, responded=(2, False))
    ticket(desk.alpha, "closed", resolved_after=10, responded=(6, True))
    ticket(desk.alpha, "assigned", assignee=desk.one)
    ticket(desk.alpha, "in_progress", assignee=desk.one)
    ticket(desk.alpha, "waiting_on_requester", assignee=desk.two)
    # Alpha before the range: counted in the load (active now), not in the range's figures.
    ticket(desk.alpha, "resolved", days_ago=10, resolved_after=100, rating=1)
    ticket(desk.alpha, "open", days_ago=10, assignee=desk.two)
    # Beta: resolved after 1 and 3 hours (median 2, an even count), one active.
    ticket(desk.beta, "resolved", resolved_after=1, rating=4)
    ticket(desk.beta, "closed", resolved_after=3)
    ticket(desk.beta, "assigned", assignee=desk.three)
    db.session.commit()
    desk.date_from = (now - timedelta(days=3)).date().isoformat()
    return desk


def _report(client, auth_headers, user, **query):
    response = client.get(URL, query_string=query, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return response.json


def _by_id(rows, department):
    return next(row for row in rows if row["department_id"] == str(department.id))


def test_figures_over_a_date_range(client, auth_headers, desk):
    report = _report(client, auth_headers, desk.admin, date_from=desk.date_from)
    alpha = _by_id(report["departments"], desk.alpha)
    assert alpha == {
        "department_id": str(desk.alpha.id),
        "department": "Alpha",
        "total": 6,
        "held": 0,
        "rejected": 0,
        "open": 0,
        "assigned": 1,
        "in_progress": 1,
        "waiting_on_requester": 1,
        "resolved": 2,
        "closed": 1,
        "median_resolution_hours": 4.0,
        "median_first_response_hours": 2.0,
        "sla_compliance": 66.67,
        "average_feedback": 3.5,
        "feedback_count": 2,
    }
    beta = _by_id(report["departments"], desk.beta)
    assert (beta["total"], beta["median_resolution_hours"], beta["average_feedback"]) == (3, 2.0, 4.0)
    loads = {row["username"]: row["active_tickets"] for row in report["agents"]}
    assert loads == {desk.lead.username: 0, desk.one.username: 2, desk.two.username: 2, desk.three.username: 1}
    alpha_agents = [row["username"] for row in report["agents"] if row["department"] == "Alpha"]
    assert alpha_agents[-1] == desk.lead.username  # busiest first


def test_without_a_range_every_ticket_counts(client, auth_headers, desk):
    alpha = _by_id(_report(client, auth_headers, desk.admin)["departments"], desk.alpha)
    assert (alpha["total"], alpha["open"], alpha["resolved"]) == (8, 1, 3)
    assert alpha["median_resolution_hours"] == 7.0  # 2, 4, 10, 100
    assert alpha["average_feedback"] == 2.67


def test_a_range_without_tickets(client, auth_headers, desk):
    future = (utcnow() + timedelta(days=5)).date().isoformat()
    alpha = _by_id(_report(client, auth_headers, desk.admin, date_from=future)["departments"], desk.alpha)
    figures = ("total", "median_resolution_hours", "median_first_response_hours", "sla_compliance", "average_feedback")
    assert [alpha[name] for name in figures] == [0, None, None, None, None]


def test_roles(client, auth_headers, desk):
    everything = _report(client, auth_headers, desk.admin)
    assert {str(desk.alpha.id), str(desk.beta.id)} <= {row["department_id"] for row in everything["departments"]}
    lead = _report(client, auth_headers, desk.lead)
    assert [row["department"] for row in lead["departments"]] == ["Alpha"]
    assert {row["department"] for row in lead["agents"]} == {"Alpha"}
    only_alpha = _report(client, auth_headers, desk.lead, department_id=str(desk.alpha.id))
    assert only_alpha["departments"] == lead["departments"]
    headers = auth_headers(desk.lead)
    assert client.get(URL, query_string={"department_id": str(desk.beta.id)}, headers=headers).status_code == 403
    for user in (desk.one, desk.three, desk.requester):
        assert client.get(URL, headers=auth_headers(user)).status_code == 403
    admin_beta = _report(client, auth_headers, desk.admin, department_id=str(desk.beta.id))
    assert [row["department"] for row in admin_beta["departments"]] == ["Beta"]


def test_csv(client, auth_headers, desk):
    headers = auth_headers(desk.lead)
    response = client.get(URL, query_string={"format": "csv", "date_from": desk.date_from}, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert (row["department"], row["total"], row["resolved"]) == ("Alpha", "6", "2")
    assert row["median_resolution_hours"] == "4.0"
    figures = ("average_feedback", "median_first_response_hours", "sla_compliance")
    assert [row[name] for name in figures] == ["3.5", "2.0", "66.67"]
    response = client.get(URL, query_string={"format": "csv", "table": "agents"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {(row["username"], row["active_tickets"]) for row in rows} == {
        (desk.lead.username, "0"),
        (desk.one.username, "2"),
        (desk.two.username, "2"),
    }
    assert client.get(URL, query_string={"table": "nope"}, headers=headers).status_code == 400
