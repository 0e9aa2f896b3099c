"""A ticket's resolution: given when resolving (`PATCH …/status`), shown, cleared on reopen, searched (the search
objects' triggers of migration 0018 on both databases) and used as the answer by `helpdesk/ask` and suggestions."""

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.extensions import db
from tests import test_tickets
from tests.test_tickets import file

desk = test_tickets.desk  # the fixture: `it` (vpn) with an agent and a lead, `hr` (payroll) with an agent

FIX = "Replaced the toner cartridge and cleaned the drum unit."


def status(client, auth_headers, user, ticket, **body):
    return client.patch(f"/api/tickets/{ticket['id']}/status", json=body, headers=auth_headers(user))


def resolve(client, auth_headers, desk, ticket, resolution=FIX):
    response = status(client, auth_headers, desk.agent, ticket, status="resolved", resolution=resolution)
    assert response.status_code == 200, response.json
    return response.json


def found(client, auth_headers, user, q):
    response = client.get("/api/tickets", query_string={"q": q}, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def test_resolving_stores_and_shows_the_resolution(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assert ticket["resolution"] is None
    resolved = resolve(client, auth_headers, desk, ticket, resolution=f"  {FIX}  ")
    assert (resolved["status"], resolved["resolution"]) == ("resolved", FIX)  # stored stripped
    shown = client.get(f"/api/tickets/{ticket['id']}", headers=auth_headers(desk.requester)).json
    assert shown["resolution"] == FIX
    closed = status(client, auth_headers, desk.requester, ticket, status="closed").json
    assert closed["resolution"] == FIX
    changes = db.session.scalars(sa.select(AuditLog.changes).where(AuditLog.action == "ticket.status")).all()
    assert {"status": {"from": "assigned", "to": "resolved"}, "resolution": FIX} in changes


def test_the_resolution_is_optional(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    response = status(client, auth_headers, desk.agent, ticket, status="resolved")
    assert response.status_code == 200 and response.json["resolution"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed", "resolution": FIX},
        {"status": "in_progress", "resolution": FIX},
        {"status": "resolved", "resolution": ""},
        {"status": "resolved", "resolution": "   "},
        {"status": "resolved", "resolution": "x" * 5001},
        {"status": "resolved", "resolution": None},
        {"status": "resolved", "resolution": 42},
    ],
    ids=["closed", "in-progress", "empty", "blank", "too-long", "null", "number"],
)
def test_a_resolution_only_with_resolved_and_1_to_5000_characters(client, auth_headers, desk, body):
    ticket = file(client, auth_headers, desk.requester)
    response = status(client, auth_headers, desk.agent, ticket, **body)
    assert response.status_code == 400, response.json
    assert "resolution" in response.json["details"]
    assert client.get(f"/api/tickets/{ticket['id']}", headers=auth_headers(desk.agent)).json["status"] == "assigned"


def test_5000_characters_are_enough(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    assert resolve(client, auth_headers, desk, ticket, resolution="x" * 5000)["resolution"] == "x" * 5000


def test_staff_replace_the_resolution_of_a_resolved_ticket(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    resolve(client, auth_headers, desk, ticket)
    response = status(client, auth_headers, desk.requester, ticket, status="resolved", resolution="I fixed it myself.")
    assert response.status_code == 403
    response = status(client, auth_headers, desk.lead, ticket, status="resolved", resolution="A new drum unit.")
    assert response.status_code == 200 and response.json["resolution"] == "A new drum unit."
    assert response.json["resolved_at"] is not None
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.action.like("ticket.%"))).all()
    assert actions.count("ticket.resolution") == 1


def test_a_reopen_clears_the_resolution(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    resolve(client, auth_headers, desk, ticket)
    reopened = status(client, auth_headers, desk.requester, ticket, status="open")
    assert reopened.status_code == 200 and reopened.json["resolution"] is None
    assert found(client, auth_headers, desk.requester, "cartridge") == []


def test_the_resolution_is_searched(client, auth_headers, desk):
    """The triggers of migration 0018: the resolution's words find the ticket (stemmed), as soon as it is given."""
    ticket = file(client, auth_headers, desk.requester)
    other = file(client, auth_headers, desk.requester, title="VPN is slow", description="Slow since the update.")
    assert found(client, auth_headers, desk.requester, "cartridges") == []
    resolve(client, auth_headers, desk, ticket)
    resolve(client, auth_headers, desk, other, resolution="Moved the user to another gateway.")
    assert found(client, auth_headers, desk.requester, "cartridges") == [ticket["id"]]
    assert found(client, auth_headers, desk.requester, "vpn drum") == [ticket["id"]]  # title and resolution
    assert found(client, auth_headers, desk.requester, "gateways") == [other["id"]]
    status(client, auth_headers, desk.lead, ticket, status="resolved", resolution="Rebooted the print server.")
    assert found(client, auth_headers, desk.requester, "cartridge") == []
    assert found(client, auth_headers, desk.requester, "rebooting") == [ticket["id"]]


def test_ask_and_suggestions_answer_with_the_resolution(client, auth_headers, desk):
    with_fix = file(client, auth_headers, desk.requester, title="VPN token expired", description="Cannot log in.")
    without = file(
        client, auth_headers, desk.other_requester, title="VPN token lost", description="The token app is gone."
    )
    resolve(client, auth_headers, desk, with_fix, resolution="Renewed the token in the self-service portal.")
    assert status(client, auth_headers, desk.agent, without, status="resolved").status_code == 200
    # Found by a word of its resolution alone ("portal"), answering with it.
    response = client.post("/api/helpdesk/ask", json={"query": "vpn portal"}, headers=auth_headers(desk.requester))
    assert response.status_code == 200
    [answer] = response.json["answers"]
    assert (answer["id"], answer["snippet"]) == (with_fix["id"], "Renewed the token in the self-service portal.")
    ticket = file(client, auth_headers, desk.requester, title="VPN token expired again", description="Token again.")
    response = client.get(f"/api/tickets/{ticket['id']}/suggestions", headers=auth_headers(desk.admin))
    assert response.status_code == 200
    snippets = {answer["id"]: answer["snippet"] for answer in response.json["tickets"]}
    assert snippets == {
        with_fix["id"]: "Renewed the token in the self-service portal.",
        without["id"]: "The token app is gone.",  # no resolution: its description
    }
