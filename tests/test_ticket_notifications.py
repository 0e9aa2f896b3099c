"""Helpdesk notifications (who hears of what, e-mail per preference) and live ticket events (real Socket.IO clients,
each getting the ticket as they may see it; department rooms joined at connect and when an agent is added)."""

import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs import worker
from finstack.notifications.models import Notification
from finstack.notifications.service import Draft, notify
from finstack.tickets import sla
from finstack.tickets.models import DepartmentAgent, Ticket

BODY = {"title": "VPN is down", "description": "The vpn drops every minute since Monday.", "urgency": "high"}
HELD = {"description": "Nothing works at all!!!!!!!!!!!! Please help."}  # a character repeated: held for review
QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive
RECHECKED = 1.2  # seconds: every socket has been re-checked (SOCKET_RECHECK_SECONDS is 0.5) at least twice


@pytest.fixture
def desk(client, auth_headers, admin, make_user):
    """`Tech` (routes `vpn`: an agent and a lead) and `People` (routes `payroll`: an agent and a lead), a requester,
    and a second admin."""
    headers = auth_headers(admin)
    desk = type("Desk", (), {})()

    def department(name, keyword, *staff):
        department_id = client.post("/api/departments", json={"name": name}, headers=headers).json["id"]
        rule = {"department_id": department_id, "keywords": [keyword]}
        assert client.post("/api/routing-rules", json=rule, headers=headers).status_code == 201
        for user, role in staff:
            body = {"user_id": str(user.id), "role": role}
            response = client.post(f"/api/departments/{department_id}/agents", json=body, headers=headers)
            assert response.status_code == 201
        return department_id

    desk.agent, desk.lead, desk.hr_agent, desk.hr_lead = make_user(), make_user(), make_user(), make_user()
    desk.it = department("Tech", "vpn", (desk.agent, "agent"), (desk.lead, "lead"))
    desk.hr = department("People", "payroll", (desk.hr_agent, "agent"), (desk.hr_lead, "lead"))
    desk.requester, desk.admin, desk.other_admin = make_user(), admin, make_user(role="admin")
    desk.users = {
        user.id: name
        for name, user in vars(desk).items()
        if name in ("agent", "lead", "hr_agent", "hr_lead", "requester", "admin", "other_admin")
    }
    return desk


def file(client, auth_headers, user, **changes):
    response = client.post("/api/tickets", json={**BODY, **changes}, headers=auth_headers(user))
    assert response.status_code == 201, response.json
    return response.json


def patch(client, auth_headers, user, ticket, what, body):
    response = client.patch(f"/api/tickets/{ticket['id']}/{what}", json=body, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return response.json


def received(desk, kind=None):
    """{(who, type)} of the stored notifications (of `kind`), each checked to name its ticket."""
    query = sa.select(Notification.user_id, Notification.type, Notification.ticket_id)
    if kind is not None:
        query = query.where(Notification.type == kind)
    rows = db.session.execute(query).all()
    assert all(row.ticket_id is not None for row in rows if row.type.startswith("ticket_"))
    return sorted((desk.users[row.user_id], row.type) for row in rows)


def clear_notifications():
    db.session.execute(sa.delete(Notification))
    db.session.commit()


def staff_of_it(desk, ticket):
    """(the assignee, the other Tech staff member): the router picks one of the two."""
    if ticket["assignee"]["id"] == str(desk.agent.id):
        return "agent", "lead"
    return "lead", "agent"


# --- Who is notified -------------------------------------------------------------------------------------------------


def test_a_new_ticket_tells_its_department_and_its_assignee_only(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, other = staff_of_it(desk, ticket)
    # The assignee hears of the assignment only; People, the admins and the requester (the actor) hear nothing.
    assert received(desk) == sorted([(assignee, "ticket_assigned"), (other, "ticket_created")])
    stored = db.session.scalars(sa.select(Notification).where(Notification.type == "ticket_created")).one()
    assert stored.ticket_id == uuid.UUID(ticket["id"])
    assert ticket["number"] in stored.title and "Tech" in stored.title


def file_unassigned(client, auth_headers, desk):
    """A ticket routed to `Facilities`, a department without agents: it stays `open`, unassigned."""
    headers = auth_headers(desk.admin)
    department = client.post("/api/departments", json={"name": "Facilities"}, headers=headers).json["id"]
    rule = {"department_id": department, "keywords": ["stapler"]}
    assert client.post("/api/routing-rules", json=rule, headers=headers).status_code == 201
    ticket = file(client, auth_headers, desk.requester, title="Stapler jammed", description="The stapler jams.")
    assert ticket["status"] == "open" and ticket["assignee"] is None
    return ticket


def test_a_new_ticket_in_a_department_without_agents_tells_nobody(client, auth_headers, desk):
    file_unassigned(client, auth_headers, desk)
    assert received(desk) == []


def test_a_held_ticket_tells_the_admins_and_release_tells_the_queue(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester, **HELD)
    assert ticket["status"] == "held"
    assert received(desk) == [("admin", "ticket_created"), ("other_admin", "ticket_created")]
    clear_notifications()

    response = client.post(f"/api/tickets/{ticket['id']}/release", headers=auth_headers(desk.admin))
    assert response.status_code == 200
    assignee, other = staff_of_it(desk, response.json)
    assert received(desk) == sorted(
        [(assignee, "ticket_assigned"), (other, "ticket_created"), ("requester", "ticket_status_changed")]
    )


def test_a_rejected_ticket_tells_its_requester(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester, **HELD)
    clear_notifications()
    assert client.post(f"/api/tickets/{ticket['id']}/reject", headers=auth_headers(desk.admin)).status_code == 200
    assert received(desk) == [("requester", "ticket_status_changed")]
    assert "rejected" in db.session.scalar(sa.select(Notification.title))


def test_assigning_tells_the_new_assignee_not_the_actor(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    _, other = staff_of_it(desk, ticket)
    clear_notifications()
    patch(client, auth_headers, desk.admin, ticket, "assign", {"assignee_id": str(getattr(desk, other).id)})
    assert received(desk) == [(other, "ticket_assigned")]
    clear_notifications()
    patch(client, auth_headers, desk.lead, ticket, "assign", {"assignee_id": str(desk.lead.id)})
    assert received(desk) == []  # whoever the lead took it from, they assigned it to themself


def test_status_changes_tell_the_other_side(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    clear_notifications()
    patch(client, auth_headers, getattr(desk, assignee), ticket, "status", {"status": "resolved"})
    assert received(desk) == [("requester", "ticket_status_changed")]
    clear_notifications()
    patch(client, auth_headers, desk.requester, ticket, "status", {"status": "open"})  # reopened
    patch(client, auth_headers, desk.requester, ticket, "status", {"status": "closed"})
    assert received(desk) == [(assignee, "ticket_status_changed")] * 2
    titles = db.session.scalars(sa.select(Notification.title).order_by(Notification.title)).all()
    assert [title.split(":")[0] for title in titles] == ["Ticket closed", "Ticket open"]


def test_re_routing_tells_the_new_department(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    clear_notifications()
    moved = patch(client, auth_headers, getattr(desk, assignee), ticket, "department", {"department_id": desk.hr})
    new_assignee = "hr_agent" if moved["assignee"]["id"] == str(desk.hr_agent.id) else "hr_lead"
    other = {"hr_agent": "hr_lead", "hr_lead": "hr_agent"}[new_assignee]
    assert received(desk) == sorted([(new_assignee, "ticket_assigned"), (other, "ticket_created")])
    assert "re-routed" in db.session.scalar(
        sa.select(Notification.title).where(Notification.type == "ticket_created")
    )


def test_nobody_is_notified_about_a_ticket_they_may_not_read(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    clear_notifications()
    ticket_id = uuid.UUID(ticket["id"])
    everyone = [desk.agent, desk.lead, desk.hr_agent, desk.hr_lead, desk.requester, desk.admin]
    rows = notify([Draft(user.id, "ticket_created", "t", "m", ticket_id=ticket_id) for user in everyone])
    db.session.commit()
    assert {desk.users[row["user_id"]] for row in rows} == {"agent", "lead", "requester", "admin"}
    assert {name for name, _ in received(desk)} == {"agent", "lead", "requester", "admin"}


def test_notifications_show_their_ticket(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    listed = client.get("/api/notifications", headers=auth_headers(getattr(desk, assignee))).json["items"]
    assert [(item["type"], item["ticket_id"], item["task_id"]) for item in listed] == [
        ("ticket_assigned", ticket["id"], None)
    ]


def test_the_preferences_cover_the_ticket_types(client, auth_headers, desk):
    preferences = client.get("/api/users/me/preferences", headers=auth_headers(desk.requester)).json
    for kind in ("ticket_created", "ticket_assigned", "ticket_status_changed", "ticket_breached"):
        assert preferences[kind] is True


# --- E-mail ------------------------------------------------------------------------------------------------------


def mails(smtp_sink):
    assert worker.drain(10)
    return sorted((message["To"], message["Subject"]) for message in smtp_sink.messages)


def test_new_ticket_mails_the_assignee_and_the_department(smtp_sink, client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, other = (getattr(desk, name) for name in staff_of_it(desk, ticket))
    assert mails(smtp_sink) == sorted(
        [
            (assignee.email, f"Ticket assigned to you: {ticket['number']} VPN is down"),
            (other.email, f"New ticket in Tech: {ticket['number']} VPN is down"),
        ]
    )


def test_a_status_change_mails_the_requester(smtp_sink, client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    assert worker.drain(10)
    smtp_sink.messages.clear()
    patch(client, auth_headers, getattr(desk, assignee), ticket, "status", {"status": "in_progress"})
    assert mails(smtp_sink) == [(desk.requester.email, f"Ticket in progress: {ticket['number']} VPN is down")]
    body = smtp_sink.messages[0].get_payload()
    assert "went from assigned to in progress" in body


def test_an_sla_breach_mails_the_assignee_and_the_leads_once(smtp_sink, runner, client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    if ticket["assignee"]["id"] != str(desk.agent.id):
        patch(client, auth_headers, desk.admin, ticket, "assign", {"assignee_id": str(desk.agent.id)})
    assert worker.drain(10)
    smtp_sink.messages.clear()
    overdue = utcnow() - timedelta(minutes=1)
    db.session.execute(
        sa.update(Ticket).where(Ticket.id == uuid.UUID(ticket["id"])).values(first_response_due_at=overdue)
    )
    db.session.commit()
    result = runner.invoke(args=["tickets", "sweep-sla"])
    assert result.exit_code == 0, result.output
    subject = f"SLA breached: {ticket['number']} (first response)"
    assert mails(smtp_sink) == sorted([(desk.agent.email, subject), (desk.lead.email, subject)])
    stored = received(desk, "ticket_breached")
    assert stored == [("agent", "ticket_breached"), ("lead", "ticket_breached")]
    assert runner.invoke(args=["tickets", "sweep-sla"]).exit_code == 0
    assert len(mails(smtp_sink)) == 2


def test_an_sla_breach_reaches_the_sockets_of_the_requester_and_the_staff(
    runner, client, auth_headers, desk, socket_client
):
    """The sweep's events as real clients receive them (on PostgreSQL built by the database, `updated_in_sql`):
    the requester's view to the requester, the staff view and the breach notification to the assignee."""
    ticket = file(client, auth_headers, desk.requester)
    if ticket["assignee"]["id"] != str(desk.agent.id):
        patch(client, auth_headers, desk.admin, ticket, "assign", {"assignee_id": str(desk.agent.id)})
    requester, agent, elsewhere = socket_client(desk.requester), socket_client(desk.agent), socket_client(desk.hr_lead)
    db.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == uuid.UUID(ticket["id"]))
        .values(first_response_due_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    result = runner.invoke(args=["tickets", "sweep-sla"])
    assert result.exit_code == 0, result.output

    mine = requester.wait_for("ticket_updated")
    assert mine["id"] == ticket["id"] and mine["sla"]["first_response_breached"] is True
    assert mine["routing"] is None and mine["misuse_reasons"] is None
    theirs = agent.wait_for("ticket_updated")
    assert theirs["id"] == ticket["id"] and theirs["routing"]["department_id"] == desk.it
    assert theirs["sla"]["first_response_breached_at"] is not None
    breached = agent.wait_for("notification")
    assert breached["type"] == "ticket_breached" and breached["ticket_id"] == ticket["id"]
    assert breached["title"] == f"SLA breached: {ticket['number']} (first response)"
    time.sleep(QUIET)
    assert elsewhere.events("ticket_updated") == [] and requester.events("notification") == []


def test_a_type_turned_off_is_stored_but_not_mailed(smtp_sink, client, auth_headers, desk):
    off = {"ticket_status_changed": False}
    assert client.put("/api/users/me/preferences", json=off, headers=auth_headers(desk.requester)).status_code == 200
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    assert worker.drain(10)
    smtp_sink.messages.clear()
    patch(client, auth_headers, getattr(desk, assignee), ticket, "status", {"status": "in_progress"})
    assert mails(smtp_sink) == []
    assert received(desk, "ticket_status_changed") == [("requester", "ticket_status_changed")]


# --- Live events ---------------------------------------------------------------------------------------------------


def test_the_department_hears_of_a_new_ticket_in_its_room(client, auth_headers, desk, socket_client):
    agent, lead, elsewhere, requester = (
        socket_client(desk.agent),
        socket_client(desk.lead),
        socket_client(desk.hr_agent),
        socket_client(desk.requester),
    )
    ticket = file(client, auth_headers, desk.requester)
    for sock in (agent, lead):
        pushed = sock.wait_for("ticket_created")
        assert pushed["id"] == ticket["id"] and pushed["routing"] is not None  # the staff view
        assert pushed["department"]["id"] == desk.it and pushed["assignee"]["id"] == ticket["assignee"]["id"]
    mine = requester.wait_for("ticket_created")
    assert mine["id"] == ticket["id"] and mine["routing"] is None and mine["misuse_reasons"] is None
    time.sleep(QUIET)
    assert elsewhere.events("ticket_created") == []
    assert len(agent.events("ticket_created")) == 1 and len(requester.events("ticket_created")) == 1


def test_the_requester_hears_of_changes_in_the_requester_view(client, auth_headers, desk, socket_client):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    requester, staff, elsewhere = socket_client(desk.requester), socket_client(desk.agent), socket_client(desk.hr_lead)
    patch(client, auth_headers, getattr(desk, assignee), ticket, "status", {"status": "in_progress"})

    mine = requester.wait_for("ticket_updated")
    assert mine["status"] == "in_progress" and mine["sla"]["first_responded_at"] is not None
    assert mine["routing"] is None and mine["misuse_reasons"] is None
    theirs = staff.wait_for("ticket_updated")
    assert theirs["status"] == "in_progress" and theirs["routing"]["department_id"] == desk.it
    assert {key: value for key, value in theirs.items() if key not in ("routing", "misuse_reasons")} == {
        key: value for key, value in mine.items() if key not in ("routing", "misuse_reasons", "seq")
    }
    time.sleep(QUIET)
    assert elsewhere.events("ticket_updated") == []


def test_a_requester_on_the_staff_gets_one_event_in_the_staff_view(client, auth_headers, desk, socket_client):
    sock = socket_client(desk.lead)
    ticket = file(client, auth_headers, desk.lead)  # the lead files a ticket their own department gets
    pushed = sock.wait_for("ticket_created")
    assert pushed["id"] == ticket["id"] and pushed["routing"] is not None
    time.sleep(QUIET)
    assert len(sock.events("ticket_created")) == 1


def test_every_change_is_pushed(client, auth_headers, desk, socket_client):
    ticket = file(client, auth_headers, desk.requester)
    _, other = staff_of_it(desk, ticket)
    sock = socket_client(desk.requester)
    headers = auth_headers(desk.requester)

    def next_update(predicate):
        return sock.wait_for("ticket_updated", predicate)

    patch(client, auth_headers, desk.admin, ticket, "assign", {"assignee_id": str(getattr(desk, other).id)})
    next_update(lambda data: data["assignee"]["id"] == str(getattr(desk, other).id))
    patch(client, auth_headers, getattr(desk, other), ticket, "status", {"status": "resolved"})
    next_update(lambda data: data["status"] == "resolved")
    rated = client.post(f"/api/tickets/{ticket['id']}/feedback", json={"rating": 5}, headers=headers)
    assert rated.status_code == 200
    next_update(lambda data: data["feedback_rating"] == 5)

    edited = file_unassigned(client, auth_headers, desk)  # only a ticket still open may be edited
    assert client.put(f"/api/tickets/{edited['id']}", json={"urgency": "low"}, headers=headers).status_code == 200
    next_update(lambda data: data["id"] == edited["id"] and data["urgency"] == "low")


def test_held_tickets_go_live_to_the_admins(client, auth_headers, desk, socket_client):
    admin, requester, agent = socket_client(desk.admin), socket_client(desk.requester), socket_client(desk.agent)
    ticket = file(client, auth_headers, desk.requester, **HELD)
    assert admin.wait_for("ticket_created")["misuse_reasons"]  # the staff view
    assert requester.wait_for("ticket_created")["misuse_reasons"] is None
    released = client.post(f"/api/tickets/{ticket['id']}/release", headers=auth_headers(desk.other_admin))
    assert released.status_code == 200
    released = agent.wait_for("ticket_updated")
    assert released["id"] == ticket["id"] and released["department"]["id"] == desk.it
    assert requester.wait_for("ticket_updated")["status"] in ("open", "assigned")
    assert agent.events("ticket_created") == []  # it was held: the queue never saw it created


def test_re_routing_tells_both_departments(client, auth_headers, desk, socket_client):
    ticket = file(client, auth_headers, desk.requester)
    old, new = socket_client(desk.agent), socket_client(desk.hr_agent)
    patch(client, auth_headers, desk.lead, ticket, "department", {"department_id": desk.hr})
    arrived = new.wait_for("ticket_updated")
    assert arrived["id"] == ticket["id"] and arrived["routing"]["department"] == f"Re-routed by {desk.lead.username}"
    assert old.wait_for("ticket_updated") == {
        "id": ticket["id"],
        "number": ticket["number"],
        "department": {"id": desk.hr, "name": "People"},
    }


def test_an_agent_added_to_a_department_hears_its_events_without_reconnecting(
    client, auth_headers, desk, make_user, socket_client
):
    newcomer = make_user()
    sock = socket_client(newcomer)
    headers = auth_headers(desk.admin)
    body = {"user_id": str(newcomer.id), "role": "agent"}
    assert client.post(f"/api/departments/{desk.it}/agents", json=body, headers=headers).status_code == 201
    first = file(client, auth_headers, desk.requester)
    assert sock.wait_for("ticket_created")["id"] == first["id"]

    assert client.delete(f"/api/departments/{desk.it}/agents/{newcomer.id}", headers=headers).status_code == 204
    file(client, auth_headers, desk.requester, title="VPN is down once more")
    time.sleep(QUIET)
    assert [data["id"] for data in sock.events("ticket_created")] == [first["id"]]


def test_a_lost_leave_is_made_good_by_the_periodic_re_check(client, auth_headers, desk, socket_client):
    """The agent's row goes without the service's leave (as when a process missed it): within a second the re-check
    takes their sockets out of the department's room."""
    sock = socket_client(desk.agent)
    db.session.execute(sa.delete(DepartmentAgent).where(DepartmentAgent.user_id == desk.agent.id))
    db.session.commit()
    time.sleep(RECHECKED)
    ticket = file(client, auth_headers, desk.requester)
    assert ticket["assignee"]["id"] == str(desk.lead.id)  # the agent is gone from the department
    time.sleep(QUIET)
    assert sock.events("ticket_created") == []


def test_removing_an_agent_pushes_their_requeued_tickets(client, auth_headers, desk, socket_client):
    ticket = file(client, auth_headers, desk.requester)
    assignee, _ = staff_of_it(desk, ticket)
    requester = socket_client(desk.requester)
    removed = client.delete(
        f"/api/departments/{desk.it}/agents/{getattr(desk, assignee).id}", headers=auth_headers(desk.admin)
    )
    assert removed.status_code == 204
    requeued = requester.wait_for("ticket_updated")
    assert requeued["id"] == ticket["id"] and requeued["status"] == "open" and requeued["assignee"] is None


def test_a_recorded_breach_is_pushed(app, client, auth_headers, desk, socket_client):
    ticket = file(client, auth_headers, desk.requester)
    staff, requester = socket_client(desk.agent), socket_client(desk.requester)
    now = utcnow() + timedelta(days=30)  # the frozen clock: every target has passed
    result = sla.sweep(now)
    assert result.first_response_breaches == 1 and result.resolution_breaches == 1
    pushed = staff.wait_for("ticket_updated")
    assert pushed["id"] == ticket["id"] and pushed["sla"]["first_response_breached_at"] is not None
    assert requester.wait_for("ticket_updated")["sla"]["resolution_breached_at"] is not None
    time.sleep(QUIET)
    assert len(staff.events("ticket_updated")) == 1  # both breaches of the ticket: one event
