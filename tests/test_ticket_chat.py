"""In-ticket chat: the ticket's conversation, who reads it, internal notes (REST and real sockets), rooms that follow
the ticket, the first response, `is_ai`, and `ticket_replied` notifications."""

import time
import uuid

import pytest
import sqlalchemy as sa

from finstack.chat.models import Conversation, Message
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tickets.models import Ticket

QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive
BODY = {"title": "VPN is down", "description": "The vpn drops every minute since Monday.", "urgency": "high"}


@pytest.fixture
def desk(client, auth_headers, admin, make_user):
    """`it` (an agent, a second agent, a lead) and `hr` (an agent), a requester and a stranger."""
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

    desk = type("Desk", (), {})()
    desk.it, desk.hr = department("Tech", "vpn"), department("People", "payroll")
    desk.agent, desk.other_agent, desk.lead = add(desk.it, "agent"), add(desk.it, "agent"), add(desk.it, "lead")
    desk.hr_agent = add(desk.hr, "agent")
    desk.requester, desk.stranger, desk.admin = make_user(), make_user(), admin
    return desk


@pytest.fixture
def api(client, auth_headers):
    def call(user, method, path, **kwargs):
        return client.open(path, method=method, headers=auth_headers(user), **kwargs)

    return call


@pytest.fixture
def ticket(api, desk):
    """A ticket of `desk.requester` in IT, held by `desk.agent` (routed there, or assigned by the lead)."""
    created = api(desk.requester, "POST", "/api/tickets", json=BODY)
    assert created.status_code == 201, created.json
    if created.json["assignee"]["id"] == str(desk.agent.id):
        return created.json
    path = f"/api/tickets/{created.json['id']}/assign"
    assigned = api(desk.lead, "PATCH", path, json={"assignee_id": str(desk.agent.id)})
    assert assigned.status_code == 200, assigned.json
    return assigned.json


def messages_path(ticket):
    return f"/api/chat/conversations/{ticket['conversation_id']}/messages"


def post(api, user, ticket, content, **flags):
    response = api(user, "POST", messages_path(ticket), json={"content": content, **flags})
    assert response.status_code == 201, response.json
    return response.json


def contents(api, user, ticket, **query):
    response = api(user, "GET", messages_path(ticket), query_string=query)
    assert response.status_code == 200, response.json
    return [item["content"] for item in response.json["items"]]


def reload(ticket):
    db.session.expire_all()
    return db.session.get(Ticket, uuid.UUID(ticket["id"]))


# --- The conversation and who reads it ---------------------------------------------------------------------------


def test_every_ticket_has_one_conversation_made_with_it(api, desk, ticket):
    conversation_id = ticket["conversation_id"]
    stored = db.session.scalar(sa.select(Conversation).where(Conversation.ticket_id == uuid.UUID(ticket["id"])))
    assert stored is not None and str(stored.id) == conversation_id and stored.kind == "ticket"

    response = api(desk.requester, "GET", f"/api/tickets/{ticket['id']}/conversation")
    assert response.status_code == 200
    body = response.json
    assert body["id"] == conversation_id and body["kind"] == "ticket" and body["ticket_id"] == ticket["id"]
    assert body["task_id"] is None and body["participant_ids"] == [] and body["unread_count"] == 0
    assert api(desk.agent, "GET", f"/api/tickets/{ticket['id']}").json["conversation_id"] == conversation_id

    second = api(desk.requester, "POST", "/api/tickets", json={**BODY, "title": "VPN again please"})
    assert second.json["conversation_id"] not in (None, conversation_id)


def test_a_held_ticket_has_its_conversation_too(api, desk):
    api(desk.admin, "POST", "/api/admin/blocked-terms", json={"term": "idiots"})
    held = api(desk.requester, "POST", "/api/tickets", json={**BODY, "description": "The vpn is run by idiots."})
    assert held.status_code == 201 and held.json["status"] == "held"
    assert api(desk.requester, "GET", f"/api/tickets/{held.json['id']}/conversation").status_code == 200


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("requester", 200),
        ("agent", 200),
        ("other_agent", 200),
        ("lead", 200),
        ("admin", 200),
        ("hr_agent", 404),
        ("stranger", 404),
    ],
)
def test_each_role_reads_and_writes_the_conversation_or_gets_404(api, desk, ticket, who, status):
    user = getattr(desk, who)
    response = api(user, "GET", f"/api/tickets/{ticket['id']}/conversation")
    assert response.status_code == status
    if status == 404:
        assert response.json["error"] == "Ticket not found"
    listed = api(user, "GET", messages_path(ticket))
    sent = api(user, "POST", messages_path(ticket), json={"content": f"Hello from {who}"})
    read = api(user, "GET", f"/api/chat/conversations/{ticket['conversation_id']}")
    assert (listed.status_code, read.status_code) == (status, status)
    assert sent.status_code == (201 if status == 200 else 404)
    if status == 404:
        assert set(sent.json) >= {"error", "details"}


def test_ticket_threads_stay_out_of_the_conversation_list(api, desk, ticket):
    post(api, desk.agent, ticket, "We are on it")
    listed = api(desk.requester, "GET", "/api/chat/conversations").json
    assert ticket["conversation_id"] not in [item["id"] for item in listed["items"]]


# --- Internal notes ----------------------------------------------------------------------------------------------


def test_internal_notes_never_reach_the_requester_by_rest(api, desk, ticket):
    public = post(api, desk.agent, ticket, "Could you restart the client?")
    note = post(api, desk.agent, ticket, "Secret: the vpn gateway is broken", internal=True)
    assert note["internal"] is True and public["internal"] is False
    conversation_id = ticket["conversation_id"]

    # The message list, the conversation's unread count and last message.
    assert contents(api, desk.requester, ticket) == ["Could you restart the client?"]
    assert contents(api, desk.lead, ticket) == ["Could you restart the client?", "Secret: the vpn gateway is broken"]
    view = api(desk.requester, "GET", f"/api/tickets/{ticket['id']}/conversation").json
    assert view["unread_count"] == 1 and view["last_message"]["id"] == public["id"]
    staff_view = api(desk.lead, "GET", f"/api/chat/conversations/{conversation_id}").json
    assert staff_view["unread_count"] == 2 and staff_view["last_message"]["id"] == note["id"]

    # Cursors, search, pins, read markers.
    bad_cursor = api(desk.requester, "GET", messages_path(ticket), query_string={"after": note["id"]})
    assert bad_cursor.status_code == 400 and "after" in bad_cursor.json["details"]
    search = {"q": "secret", "conversation_id": conversation_id}
    assert api(desk.requester, "GET", "/api/chat/search", query_string=search).json["pagination"]["total"] == 0
    assert api(desk.lead, "GET", "/api/chat/search", query_string=search).json["pagination"]["total"] == 1
    pin_path = f"/api/chat/conversations/{conversation_id}/messages/{note['id']}/pin"
    assert api(desk.requester, "POST", pin_path).status_code == 404
    assert api(desk.agent, "POST", pin_path).status_code == 200
    pinned_path = f"/api/chat/conversations/{conversation_id}/pinned-messages"
    assert api(desk.requester, "GET", pinned_path).json["items"] == []
    assert [item["id"] for item in api(desk.lead, "GET", pinned_path).json["items"]] == [note["id"]]
    read_path = f"/api/chat/conversations/{conversation_id}/read"
    assert api(desk.requester, "POST", read_path, json={"message_ids": [note["id"]]}).status_code == 400
    read = api(desk.requester, "POST", read_path).json
    assert read["last_read_message_id"] == public["id"] and read["unread_count"] == 0


def test_only_staff_send_internal_notes_and_suggested_replies(api, desk, ticket, make_user):
    for flags in ({"internal": True}, {"is_ai": True}):
        refused = api(desk.requester, "POST", messages_path(ticket), json={"content": "Let me in", **flags})
        assert refused.status_code == 403 and set(refused.json) >= {"error", "details"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0

    suggested = post(api, desk.other_agent, ticket, "Restart the client, then sign in again.", is_ai=True)
    assert suggested["is_ai"] is True and suggested["internal"] is False
    assert [item["is_ai"] for item in api(desk.requester, "GET", messages_path(ticket)).json["items"]] == [True]
    assert post(api, desk.admin, ticket, "Admin note", internal=True, is_ai=True)["internal"] is True

    # An agent who files a ticket is its requester there: no internal notes on it.
    own = api(desk.agent, "POST", "/api/tickets", json=BODY).json
    refused = api(desk.agent, "POST", messages_path(own), json={"content": "note to self", "internal": True})
    assert refused.status_code == 403

    # Elsewhere the flags mean nothing: 400.
    other = make_user()
    dm = api(desk.agent, "POST", "/api/chat/conversations", json={"participant_ids": [str(other.id)]}).json
    for flags in ({"internal": True}, {"is_ai": True}):
        response = api(
            desk.agent, "POST", f"/api/chat/conversations/{dm['id']}/messages", json={"content": "x", **flags}
        )
        assert response.status_code == 400 and list(response.json["details"]) == list(flags)
    assert api(desk.agent, "POST", messages_path(ticket), json={"content": "x", "internal": "yes"}).status_code == 400


# --- Sockets -----------------------------------------------------------------------------------------------------


def test_internal_notes_never_reach_the_requesters_socket(api, desk, ticket, socket_client):
    # All connect after the ticket exists: the requester's, the assignee's and the lead's sockets are in its rooms
    # from connect; the other agent of the department and the HR agent opened nothing.
    requesters, agents, leads = socket_client(desk.requester), socket_client(desk.agent), socket_client(desk.lead)
    others, hrs = socket_client(desk.other_agent), socket_client(desk.hr_agent)

    note = post(api, desk.agent, ticket, "Gateway is broken, do not tell yet", internal=True)
    assert agents.wait_for("chat_message") == note
    assert leads.wait_for("chat_message") == note
    public = post(api, desk.agent, ticket, "We are looking into it")
    assert requesters.wait_for("chat_message") == public
    assert leads.wait_for("chat_message", lambda data: data["id"] == public["id"]) == public

    # Read receipts of internal notes stay with staff too.
    receipt = leads.call("mark_read", {"conversation_id": ticket["conversation_id"], "message_ids": [note["id"]]})
    assert receipt["last_read_message_id"] == note["id"]
    assert agents.wait_for("read_receipt") == receipt

    time.sleep(QUIET)
    assert requesters.events("chat_message") == [public]
    assert requesters.events("read_receipt") == []
    assert others.events("chat_message") == [] and hrs.events("chat_message") == []

    # The requester's own socket: a note is refused with the error shape, a message is delivered to staff.
    payload = {"conversation_id": ticket["conversation_id"], "content": "sneaky", "client_id": "c1", "internal": True}
    ack = requesters.call("send_message", payload)
    assert ack["error"] and ack["code"] and "details" in ack
    ack = requesters.call("send_message", {**payload, "internal": False, "content": "Thanks"})
    assert agents.wait_for("chat_message", lambda data: data["id"] == ack["id"])["content"] == "Thanks"


def test_an_agent_of_the_department_hears_the_thread_once_they_open_it(api, desk, ticket, socket_client):
    others = socket_client(desk.other_agent)
    post(api, desk.agent, ticket, "first note", internal=True)
    assert api(desk.other_agent, "GET", f"/api/tickets/{ticket['id']}/conversation").status_code == 200
    note = post(api, desk.agent, ticket, "second note", internal=True)
    assert others.wait_for("chat_message") == note


def test_a_requester_connected_before_filing_hears_the_new_ticket(api, desk, socket_client):
    requesters = socket_client(desk.requester)
    created = api(desk.requester, "POST", "/api/tickets", json=BODY).json
    assignee = created["assignee"]["id"]
    staff = next(user for user in (desk.agent, desk.other_agent, desk.lead) if str(user.id) == assignee)
    reply = post(api, staff, created, "Hello, I took your ticket")
    assert requesters.wait_for("chat_message") == reply


def test_reassigning_moves_the_new_assignee_in(api, desk, ticket, socket_client):
    others = socket_client(desk.other_agent)  # connected while not the assignee: in no room of the ticket
    moved = api(
        desk.lead, "PATCH", f"/api/tickets/{ticket['id']}/assign", json={"assignee_id": str(desk.other_agent.id)}
    )
    assert moved.status_code == 200
    note = post(api, desk.lead, ticket, "Yours now", internal=True)
    assert others.wait_for("chat_message") == note


def test_rerouting_takes_the_old_department_out_and_brings_the_new_one_in(api, desk, ticket, socket_client):
    agents, leads, hrs = socket_client(desk.agent), socket_client(desk.lead), socket_client(desk.hr_agent)
    rerouted = api(desk.agent, "PATCH", f"/api/tickets/{ticket['id']}/department", json={"department_id": desk.hr})
    assert rerouted.status_code == 200 and rerouted.json["assignee"]["id"] == str(desk.hr_agent.id)

    note = post(api, desk.hr_agent, ticket, "HR has it now", internal=True)
    public = post(api, desk.hr_agent, ticket, "Hello from HR")
    assert hrs.wait_for("chat_message", lambda data: data["id"] == public["id"]) == public
    assert hrs.events("chat_message")[0] == note
    time.sleep(QUIET)
    assert agents.events("chat_message") == [] and leads.events("chat_message") == []
    assert api(desk.lead, "GET", messages_path(ticket)).status_code == 404


def test_an_agent_removed_from_the_department_stops_hearing_its_tickets(api, desk, ticket, socket_client):
    agents, leads = socket_client(desk.agent), socket_client(desk.lead)  # the assignee: in both rooms from connect
    removed = api(desk.admin, "DELETE", f"/api/departments/{desk.it}/agents/{desk.agent.id}")
    assert removed.status_code == 204

    note = post(api, desk.lead, ticket, "Who takes this one now?", internal=True)
    assert leads.wait_for("chat_message") == note
    time.sleep(QUIET)
    assert agents.events("chat_message") == []


# --- First response and notifications ----------------------------------------------------------------------------


def test_the_first_public_staff_reply_stamps_the_first_response(api, desk, ticket):
    post(api, desk.requester, ticket, "Any news?")
    post(api, desk.agent, ticket, "Looking at the logs", internal=True)
    assert reload(ticket).first_responded_at is None

    reply = post(api, desk.other_agent, ticket, "We found it")
    stamped = reload(ticket).first_responded_at
    assert stamped is not None and stamped.isoformat() == reply["created_at"]
    post(api, desk.agent, ticket, "Fixed")
    assert reload(ticket).first_responded_at == stamped
    assert api(desk.requester, "GET", f"/api/tickets/{ticket['id']}").json["sla"]["first_responded_at"] is not None


def _replied(user):
    return db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user.id, Notification.type == "ticket_replied")
    ).all()


def test_replies_notify_the_other_side(api, desk, ticket):
    post(api, desk.agent, ticket, "Please restart the client")
    notes = _replied(desk.requester)
    assert len(notes) == 1 and ticket["number"] in notes[0].title and "restart the client" in notes[0].message

    post(api, desk.requester, ticket, "Restarted, still broken")
    assert len(_replied(desk.agent)) == 1 and _replied(desk.lead) == []

    post(api, desk.lead, ticket, "internal only", internal=True)
    assert len(_replied(desk.requester)) == 1 and len(_replied(desk.agent)) == 1


def test_a_requester_message_on_an_unassigned_ticket_goes_to_the_leads(api, desk, client, auth_headers):
    headers = auth_headers(desk.admin)
    queue = client.post("/api/departments", json={"name": "Facilities"}, headers=headers).json["id"]
    client.post("/api/routing-rules", json={"department_id": queue, "keywords": ["heating"]}, headers=headers)
    body = {**BODY, "title": "The heating is off", "description": "No heating on the third floor since today."}
    created = api(desk.requester, "POST", "/api/tickets", json=body).json
    assert created["assignee"] is None
    client.post(
        f"/api/departments/{queue}/agents", json={"user_id": str(desk.lead.id), "role": "lead"}, headers=headers
    )

    post(api, desk.requester, created, "It is cold in here")
    assert len(_replied(desk.lead)) == 1
