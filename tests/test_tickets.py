"""Tickets: creation and numbering, who sees and does what, the status life cycle, reopening, feedback, the limit."""

import re
import threading
import uuid
from datetime import timedelta
from unittest.mock import ANY

import pytest
import requests
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tickets.models import Ticket

TICKET_FIELDS = {
    "id",
    "number",
    "title",
    "description",
    "urgency",
    "category",
    "status",
    "requester",
    "department",
    "assignee",
    "routing",
    "misuse_flag",
    "misuse_reasons",
    "resolution",
    "feedback_rating",
    "feedback_comment",
    "feedback_at",
    "resolved_at",
    "closed_at",
    "created_at",
    "updated_at",
    "sla",
    "conversation_id",
}
PAYROLL = {"title": "Payroll question", "description": "My payroll slip shows the wrong month."}
BODY = {"title": "VPN is down", "description": "The vpn drops every minute since Monday.", "urgency": "high"}


@pytest.fixture
def desk(client, auth_headers, admin, make_user):
    """Two departments with rules: `it` (an agent and a lead) and `hr` (an agent), plus a requester."""
    headers = auth_headers(admin)

    def department(name, keyword):
        department_id = client.post("/api/departments", json={"name": name}, headers=headers).json["id"]
        body = {"department_id": department_id, "keywords": [keyword]}
        assert client.post("/api/routing-rules", json=body, headers=headers).status_code == 201
        return department_id

    def add(department_id, role):
        user = make_user()
        body = {"user_id": str(user.id), "role": role}
        assert client.post(f"/api/departments/{department_id}/agents", json=body, headers=headers).status_code == 201
        return user

    it, hr = department("Tech", "vpn"), department("People", "payroll")
    desk = type("Desk", (), {})()
    desk.it, desk.hr = it, hr
    desk.agent, desk.lead, desk.hr_agent = add(it, "agent"), add(it, "lead"), add(hr, "agent")
    desk.requester, desk.admin = make_user(), admin
    desk.other_requester = make_user()
    return desk


def file(client, auth_headers, user, **changes):
    response = client.post("/api/tickets", json={**BODY, **changes}, headers=auth_headers(user))
    assert response.status_code == 201, response.json
    return response.json


def set_status(client, auth_headers, user, ticket, status):
    return client.patch(f"/api/tickets/{ticket['id']}/status", json={"status": status}, headers=auth_headers(user))


# --- Creating -----------------------------------------------------------------------------------------------------


def test_create_numbers_and_routes(client, auth_headers, desk):
    first = file(client, auth_headers, desk.requester, category="  network ")
    second = file(client, auth_headers, desk.requester)
    assert set(first) == TICKET_FIELDS
    assert re.fullmatch(r"TKT-\d{6}", first["number"])
    assert int(second["number"][4:]) == int(first["number"][4:]) + 1
    assert first["category"] == "network" and first["urgency"] == "high"
    assert first["requester"]["id"] == str(desk.requester.id)
    assert first["department"] == {"id": desk.it, "name": "Tech"}
    assert first["status"] == "assigned" and first["assignee"] is not None
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "ticket.create").limit(1))
    assert entry.changes["number"] in (first["number"], second["number"])


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "Shor"},
        {"title": "x" * 201},
        {"title": "     "},
        {"description": "Too short"},
        {"description": "x" * 5001},
        {"urgency": "urgent"},
        {"category": ""},
        {"department_id": str(uuid.uuid4())},
    ],
    ids=[
        "title-short",
        "title-long",
        "title-blank",
        "description-short",
        "description-long",
        "urgency",
        "category",
        "unknown-field",
    ],
)
def test_create_validation(client, auth_headers, member, changes):
    response = client.post("/api/tickets", json={**BODY, **changes}, headers=auth_headers(member))
    assert response.status_code == 400 and response.json["code"] == "validation_failed"
    assert set(response.json["details"]) == set(changes)


def test_bounds_are_accepted(client, auth_headers, member):
    body = {"title": "x" * 5, "description": "y" * 10, "urgency": "critical"}
    assert client.post("/api/tickets", json=body, headers=auth_headers(member)).status_code == 201
    body = {"title": "x" * 200, "description": "y" * 5000, "urgency": "low"}
    assert client.post("/api/tickets", json=body, headers=auth_headers(member)).status_code == 201


def test_numbers_never_repeat_under_concurrent_creates(client, auth_headers, admin, live_server):
    """Admins are exempt from the limit, so every create succeeds; the counter gives each its own number."""
    headers = auth_headers(admin)
    url = f"{live_server.url}/api/tickets"
    answers = at_once(*[lambda: requests.post(url, json=BODY, headers=headers, timeout=30)] * 6)
    assert [answer.status_code for answer in answers] == [201] * 6, [answer.text for answer in answers]
    assert len({answer.json()["number"] for answer in answers}) == 6


# --- Reading -------------------------------------------------------------------------------------------------------


def test_each_role_sees_what_it_should(client, auth_headers, desk):
    it_ticket = file(client, auth_headers, desk.requester)
    hr_ticket = file(client, auth_headers, desk.other_requester, **PAYROLL)
    assert hr_ticket["department"]["id"] == desk.hr

    def visible(user):
        return {item["id"] for item in client.get("/api/tickets", headers=auth_headers(user)).json["items"]}

    assert visible(desk.requester) == {it_ticket["id"]}
    assert visible(desk.other_requester) == {hr_ticket["id"]}
    assert visible(desk.agent) == visible(desk.lead) == {it_ticket["id"]}
    assert visible(desk.hr_agent) == {hr_ticket["id"]}
    assert visible(desk.admin) == {it_ticket["id"], hr_ticket["id"]}
    url = f"/api/tickets/{it_ticket['id']}"
    for user in (desk.requester, desk.agent, desk.lead, desk.admin):
        assert client.get(url, headers=auth_headers(user)).status_code == 200
    for user in (desk.other_requester, desk.hr_agent):
        response = client.get(url, headers=auth_headers(user))
        assert response.status_code == 404 and response.json["code"] == "not_found"
    assert client.get(f"/api/tickets/{uuid.uuid4()}", headers=auth_headers(desk.admin)).status_code == 404


def test_list_filters_sort_and_search(client, auth_headers, desk):
    headers = auth_headers(desk.admin)
    low = file(client, auth_headers, desk.requester, urgency="low", title="VPN slow at home")
    critical = file(client, auth_headers, desk.requester, urgency="critical", description="50% of vpn_users drop.")
    hr = file(client, auth_headers, desk.other_requester, **PAYROLL, urgency="medium")

    def ids(query, user=desk.admin):
        response = client.get(f"/api/tickets?{query}", headers=auth_headers(user))
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids("") == [hr["id"], critical["id"], low["id"]]
    assert ids("sort_by=urgency&sort_order=asc") == [low["id"], hr["id"], critical["id"]]
    assert ids("sort_by=number&sort_order=asc") == [low["id"], critical["id"], hr["id"]]
    assert ids(f"department_id={desk.hr}") == [hr["id"]]
    assert ids("urgency=critical") == [critical["id"]]
    assert ids("status=assigned&per_page=1") == [hr["id"]]
    assert ids(f"assignee_id={desk.hr_agent.id}") == [hr["id"]]
    assert ids("q=SLOW AT") == [low["id"]]
    assert ids("q=50%25") == [critical["id"]]
    assert ids("q=_users") == [critical["id"]]
    assert ids("q=%25") == []  # no word: full text, not a substring (tests/test_ticket_search.py)
    assert ids(f"q={hr['number']}") == [hr["id"]]
    assert ids(f"q={int(hr['number'][4:])}") == [hr["id"]]
    assert ids("mine=true", desk.requester) == [critical["id"], low["id"]]
    assert ids("mine=true", desk.agent) == []
    envelope = client.get("/api/tickets?per_page=2", headers=headers).json
    assert envelope["pagination"] == {
        "page": 1, "per_page": 2, "total": 3, "pages": 2, "total_exact": True, "next_cursor": ANY
    }
    assert client.get("/api/tickets?sort_by=title", headers=headers).status_code == 400
    assert client.get("/api/tickets?status=new", headers=headers).status_code == 400


# --- Editing --------------------------------------------------------------------------------------------------------


def test_the_requester_edits_an_open_ticket(client, auth_headers, make_user):
    requester = make_user()
    ticket = file(client, auth_headers, requester)  # no agent anywhere: it stays open
    assert ticket["status"] == "open"
    url = f"/api/tickets/{ticket['id']}"
    edited = client.put(url, json={"title": "VPN drops hourly", "urgency": "low"}, headers=auth_headers(requester))
    assert edited.status_code == 200 and (edited.json["title"], edited.json["urgency"]) == ("VPN drops hourly", "low")
    assert client.put(url, json={}, headers=auth_headers(requester)).status_code == 400
    assert client.put(url, json={"category": "x"}, headers=auth_headers(requester)).status_code == 400
    flagged = client.put(url, json={"description": "Still broken!!!!!!!!!!!!"}, headers=auth_headers(requester))
    assert flagged.status_code == 422 and flagged.json["code"] == "unprocessable"
    assert db.session.scalar(sa.select(AuditLog.changes).where(AuditLog.action == "ticket.update")) == {
        "title": {"from": "VPN is down", "to": "VPN drops hourly"},
        "urgency": {"from": "high", "to": "low"},
    }


def test_only_the_requester_edits_and_only_while_open(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    assert client.put(url, json={"title": "Changed title"}, headers=auth_headers(desk.agent)).status_code == 403
    assert client.put(url, json={"title": "Changed title"}, headers=auth_headers(desk.admin)).status_code == 403
    assert client.put(url, json={"title": "Changed title"}, headers=auth_headers(desk.hr_agent)).status_code == 404
    assigned = client.put(url, json={"title": "Changed title"}, headers=auth_headers(desk.requester))
    assert assigned.status_code == 409


# --- Status ---------------------------------------------------------------------------------------------------------


def test_the_working_path_to_resolution(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    for status in ("in_progress", "waiting_on_requester", "in_progress", "resolved"):
        response = set_status(client, auth_headers, desk.agent, ticket, status)
        assert response.status_code == 200 and response.json["status"] == status
    assert response.json["resolved_at"] is not None
    closed = set_status(client, auth_headers, desk.requester, ticket, "closed")
    assert closed.status_code == 200 and closed.json["closed_at"] is not None
    history = db.session.scalars(
        sa.select(AuditLog.changes).where(AuditLog.action == "ticket.status").order_by(AuditLog.created_at)
    ).all()
    assert [change["status"]["to"] for change in history] == [
        "in_progress",
        "waiting_on_requester",
        "in_progress",
        "resolved",
        "closed",
    ]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((), "open"),
        ((), "held"),
        ((), "rejected"),
        (("resolved",), "in_progress"),
        (("resolved", "closed"), "resolved"),
    ],
    ids=["assigned-to-open", "held", "rejected", "resolved-to-working", "closed-to-resolved"],
)
def test_transitions_outside_the_table_are_conflicts(client, auth_headers, desk, path, target):
    ticket = file(client, auth_headers, desk.requester)
    for status in path:
        assert set_status(client, auth_headers, desk.agent, ticket, status).status_code == 200
    response = set_status(client, auth_headers, desk.agent, ticket, target)
    assert response.status_code == 409 and response.json["code"] == "conflict"
    assert "status" in response.json["details"]


def test_who_may_set_which_status(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assert set_status(client, auth_headers, desk.requester, ticket, "in_progress").status_code == 403
    assert set_status(client, auth_headers, desk.hr_agent, ticket, "in_progress").status_code == 404
    assert set_status(client, auth_headers, desk.admin, ticket, "in_progress").status_code == 200
    assert set_status(client, auth_headers, desk.lead, ticket, "waiting_on_requester").status_code == 200
    # The requester answers: back to in progress.
    assert set_status(client, auth_headers, desk.requester, ticket, "in_progress").status_code == 200
    assert set_status(client, auth_headers, desk.agent, ticket, "resolved").status_code == 200
    assert set_status(client, auth_headers, desk.agent, ticket, "open").status_code == 403


def test_working_an_unassigned_ticket_needs_an_assignee(client, auth_headers, admin, make_user):
    ticket = file(client, auth_headers, make_user())
    assert ticket["status"] == "open"
    response = set_status(client, auth_headers, admin, ticket, "in_progress")
    assert response.status_code == 409


def test_the_requester_withdraws(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assert set_status(client, auth_headers, desk.requester, ticket, "closed").json["status"] == "closed"


def _end(client, auth_headers, desk, days_ago):
    ticket = file(client, auth_headers, desk.requester)
    assert set_status(client, auth_headers, desk.agent, ticket, "resolved").status_code == 200
    row = db.session.get(Ticket, uuid.UUID(ticket["id"]))
    row.resolved_at = utcnow() - timedelta(days=days_ago)
    db.session.commit()
    return ticket


def test_reopen_within_the_window(client, auth_headers, desk):
    ticket = _end(client, auth_headers, desk, days_ago=6.9)
    reopened = set_status(client, auth_headers, desk.requester, ticket, "open")
    assert reopened.status_code == 200, reopened.json
    assert reopened.json["status"] == "open" and reopened.json["resolved_at"] is None
    assert reopened.json["assignee"]["id"] == ticket["assignee"]["id"]
    assert set_status(client, auth_headers, desk.agent, ticket, "in_progress").status_code == 200


def test_reopen_a_closed_ticket_within_the_window(client, auth_headers, desk):
    ticket = _end(client, auth_headers, desk, days_ago=1)
    assert set_status(client, auth_headers, desk.requester, ticket, "closed").status_code == 200
    assert set_status(client, auth_headers, desk.requester, ticket, "open").status_code == 200


def test_no_reopen_after_the_window(client, auth_headers, desk):
    ticket = _end(client, auth_headers, desk, days_ago=7.1)
    response = set_status(client, auth_headers, desk.requester, ticket, "open")
    assert response.status_code == 409 and "reopen_until" in response.json["details"]


def test_the_window_is_a_setting(app, client, auth_headers, desk):
    app.config["TICKET_REOPEN_DAYS"] = 10
    ticket = _end(client, auth_headers, desk, days_ago=8)
    assert set_status(client, auth_headers, desk.requester, ticket, "open").status_code == 200


# --- Assigning and re-routing ------------------------------------------------------------------------------------


def test_leads_and_admins_assign(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    url = f"/api/tickets/{ticket['id']}/assign"
    target = desk.lead if ticket["assignee"]["id"] == str(desk.agent.id) else desk.agent
    for user, status in ((desk.agent, 403), (desk.requester, 403), (desk.hr_agent, 404)):
        assert client.patch(url, json={"assignee_id": str(target.id)}, headers=auth_headers(user)).status_code == status
    done = client.patch(url, json={"assignee_id": str(target.id)}, headers=auth_headers(desk.lead))
    assert done.status_code == 200 and done.json["assignee"]["id"] == str(target.id)
    assert done.json["routing"]["assignee"] == f"Assigned by {desk.lead.username}"
    back = client.patch(url, json={"assignee_id": ticket["assignee"]["id"]}, headers=auth_headers(desk.admin))
    assert back.status_code == 200
    for outsider in (desk.hr_agent, desk.requester):
        refused = client.patch(url, json={"assignee_id": str(outsider.id)}, headers=auth_headers(desk.admin))
        assert refused.status_code == 400 and "assignee_id" in refused.json["details"]
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditLog.action == "ticket.assign")) == 2


def test_assigning_an_open_ticket_makes_it_assigned(client, auth_headers, admin, make_user):
    requester, worker = make_user(), make_user()
    ticket = file(client, auth_headers, requester)
    department = ticket["department"]["id"]
    client.post(f"/api/departments/{department}/agents", json={"user_id": str(worker.id)}, headers=auth_headers(admin))
    done = client.patch(
        f"/api/tickets/{ticket['id']}/assign", json={"assignee_id": str(worker.id)}, headers=auth_headers(admin)
    )
    assert done.status_code == 200 and done.json["status"] == "assigned"


def test_resolved_tickets_are_not_assigned_or_rerouted(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    set_status(client, auth_headers, desk.agent, ticket, "resolved")
    headers = auth_headers(desk.admin)
    url = f"/api/tickets/{ticket['id']}"
    assert client.patch(f"{url}/assign", json={"assignee_id": str(desk.agent.id)}, headers=headers).status_code == 409
    assert client.patch(f"{url}/department", json={"department_id": desk.hr}, headers=headers).status_code == 409


def test_agents_reroute_and_it_is_audited(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    url = f"/api/tickets/{ticket['id']}/department"
    assert client.patch(url, json={"department_id": desk.hr}, headers=auth_headers(desk.requester)).status_code == 403
    assert client.patch(url, json={"department_id": desk.hr}, headers=auth_headers(desk.hr_agent)).status_code == 404
    unknown = client.patch(url, json={"department_id": str(uuid.uuid4())}, headers=auth_headers(desk.agent))
    assert unknown.status_code == 400
    moved = client.patch(url, json={"department_id": desk.hr}, headers=auth_headers(desk.agent))
    assert moved.status_code == 200, moved.json
    assert moved.json["department"]["id"] == desk.hr and moved.json["assignee"]["id"] == str(desk.hr_agent.id)
    assert moved.json["routing"] is None  # the IT agent no longer works it
    assert client.get(f"/api/tickets/{ticket['id']}", headers=auth_headers(desk.agent)).status_code == 404
    seen = client.get(f"/api/tickets/{ticket['id']}", headers=auth_headers(desk.hr_agent)).json
    assert seen["routing"]["department"] == f"Re-routed by {desk.agent.username}"
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "ticket.reroute"))
    assert entry.changes["department_id"] == {"from": desk.it, "to": desk.hr}


# --- Feedback -------------------------------------------------------------------------------------------------------


def test_feedback_once_after_resolution(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    url = f"/api/tickets/{ticket['id']}/feedback"
    body = {"rating": 5, "comment": "Quick and kind."}
    early = client.post(url, json=body, headers=auth_headers(desk.requester))
    assert early.status_code == 409
    set_status(client, auth_headers, desk.agent, ticket, "resolved")
    assert client.post(url, json=body, headers=auth_headers(desk.agent)).status_code == 403
    assert client.post(url, json=body, headers=auth_headers(desk.hr_agent)).status_code == 404
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": 2.5}, {"rating": "5"}, {"rating": True}, {"comment": "x"}):
        assert client.post(url, json=bad, headers=auth_headers(desk.requester)).status_code == 400
    given = client.post(url, json={**body, "rating": 5.0}, headers=auth_headers(desk.requester))
    assert given.status_code == 200
    assert (given.json["feedback_rating"], given.json["feedback_comment"]) == (5, "Quick and kind.")
    assert given.json["feedback_at"] is not None
    again = client.post(url, json={"rating": 1}, headers=auth_headers(desk.requester))
    assert again.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditLog.action == "ticket.feedback")) == 1


def test_feedback_on_a_withdrawn_ticket_is_refused(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    set_status(client, auth_headers, desk.requester, ticket, "closed")
    url = f"/api/tickets/{ticket['id']}/feedback"
    response = client.post(url, json={"rating": 3}, headers=auth_headers(desk.requester))
    assert response.status_code == 409


# --- The daily limit ------------------------------------------------------------------------------------------------


def age(ticket_ids, hours):
    """Move the tickets' creation back in time, `hours[i]` hours for the i-th: the clock stays put."""
    now = utcnow()
    for ticket_id, hours_ago in zip(ticket_ids, hours, strict=True):
        db.session.get(Ticket, uuid.UUID(ticket_id)).created_at = now - timedelta(hours=hours_ago)
    db.session.commit()


def test_the_sixth_ticket_in_24_hours_is_refused(client, auth_headers, member):
    created = [file(client, auth_headers, member)["id"] for _ in range(5)]
    age(created, [23, 20, 10, 5, 1])
    response = client.post("/api/tickets", json=BODY, headers=auth_headers(member))
    assert response.status_code == 429
    assert response.json["code"] == "rate_limited" and set(response.json) == {"error", "code", "details"}
    retry_after = int(response.headers["Retry-After"])
    assert 3590 <= retry_after <= 3600  # the 23-hour-old ticket ages out in one hour
    assert response.json["details"] == {"limit": 5, "retry_after": retry_after}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 5


def test_the_window_rolls(client, auth_headers, member):
    created = [file(client, auth_headers, member)["id"] for _ in range(5)]
    age(created, [24.1, 20, 10, 5, 1])
    assert client.post("/api/tickets", json=BODY, headers=auth_headers(member)).status_code == 201
    assert client.post("/api/tickets", json=BODY, headers=auth_headers(member)).status_code == 429


def test_the_limit_is_a_setting_and_ignores_ratelimit_enabled(app, client, auth_headers, member):
    assert app.config["RATELIMIT_ENABLED"] is False  # the test configuration turns HTTP rate limits off
    app.config["TICKETS_PER_DAY"] = 2
    for _ in range(2):
        file(client, auth_headers, member)
    assert client.post("/api/tickets", json=BODY, headers=auth_headers(member)).status_code == 429


def test_agents_and_admins_are_exempt(client, auth_headers, desk, manager):
    for user in (desk.agent, desk.admin):
        for _ in range(7):
            file(client, auth_headers, user)
    for _ in range(5):
        file(client, auth_headers, manager)
    assert client.post("/api/tickets", json=BODY, headers=auth_headers(manager)).status_code == 429


def at_once(*calls):
    """Run the zero-argument `calls` in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_creates_never_exceed_the_limit(client, auth_headers, member, live_server, attempt):
    created = [file(client, auth_headers, member)["id"] for _ in range(3)]
    headers = auth_headers(member)

    def create():
        return requests.post(f"{live_server.url}/api/tickets", json=BODY, headers=headers, timeout=30)

    answers = at_once(*[create] * 5)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 201, 429, 429, 429], [answer.text for answer in answers]
    count = db.session.scalar(sa.select(sa.func.count()).where(Ticket.requester_id == member.id))
    assert count == 5 and len(created) == 3


@pytest.mark.parametrize("attempt", range(3))
def test_feedback_given_twice_at_once_counts_once(client, auth_headers, desk, live_server, attempt):
    ticket = file(client, auth_headers, desk.requester)
    set_status(client, auth_headers, desk.agent, ticket, "resolved")
    headers = auth_headers(desk.requester)
    url = f"{live_server.url}/api/tickets/{ticket['id']}/feedback"

    def rate(rating):
        return lambda: requests.post(url, json={"rating": rating}, headers=headers, timeout=30)

    answers = at_once(rate(2), rate(4))
    assert sorted(answer.status_code for answer in answers) == [200, 409], [answer.text for answer in answers]
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditLog.action == "ticket.feedback")) == 1
