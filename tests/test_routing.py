"""Routing: admin-managed rules pick the department, load picks the agent; the content check holds tickets back."""

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.config import ConfigError, read_environment
from finstack.extensions import db
from finstack.tickets import service as tickets

RULE_FIELDS = {"id", "department_id", "keywords", "category", "priority", "created_at", "updated_at"}


@pytest.fixture
def admin_headers(auth_headers, admin):
    return auth_headers(admin)


@pytest.fixture
def department(client, admin_headers):
    def create(name):
        response = client.post("/api/departments", json={"name": name}, headers=admin_headers)
        assert response.status_code == 201, response.json
        return response.json["id"]

    return create


@pytest.fixture
def rule(client, admin_headers):
    def create(department_id, keywords=(), **fields):
        body = {"department_id": department_id, "keywords": list(keywords), **fields}
        response = client.post("/api/routing-rules", json=body, headers=admin_headers)
        assert response.status_code == 201, response.json
        return response.json

    return create


@pytest.fixture
def agent(client, admin_headers, make_user):
    def add(department_id, role="agent", user=None):
        user = user or make_user()
        body = {"user_id": str(user.id), "role": role}
        response = client.post(f"/api/departments/{department_id}/agents", json=body, headers=admin_headers)
        assert response.status_code == 201, response.json
        return user

    return add


@pytest.fixture
def file_ticket(client, auth_headers, make_user):
    """`file_ticket(title, description, **fields)` as a fresh requester each time (no daily limit in the way)."""

    def create(title="Need some help", description="Please have a look at this soon.", urgency="medium", **fields):
        body = {"title": title, "description": description, "urgency": urgency, **fields}
        response = client.post("/api/tickets", json=body, headers=auth_headers(make_user()))
        assert response.status_code == 201, response.json
        return response.json

    return create


def routed(client, admin_headers, ticket):
    """The ticket as an admin sees it, routing decision included."""
    return client.get(f"/api/tickets/{ticket['id']}", headers=admin_headers).json


# --- Rules: the endpoints and who may use them -------------------------------------------------------------------


def test_admin_manages_rules(client, admin_headers, department, rule):
    it = department("Tech")
    created = rule(it, ["VPN", " Wi-Fi  access ", "vpn"], category="network", priority=5)
    assert set(created) == RULE_FIELDS
    assert created["keywords"] == ["vpn", "wi-fi access"]
    url = f"/api/routing-rules/{created['id']}"
    assert client.get(url, headers=admin_headers).json == created
    updated = client.put(url, json={"priority": 9, "category": None}, headers=admin_headers)
    assert updated.status_code == 200 and updated.json["priority"] == 9 and updated.json["category"] is None
    low = rule(it, ["printer"])
    listed = client.get("/api/routing-rules", headers=admin_headers).json
    assert [item["id"] for item in listed["items"]] == [created["id"], low["id"]]
    assert client.get(f"/api/routing-rules?department_id={it}", headers=admin_headers).json["pagination"]["total"] == 2
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.get(url, headers=admin_headers).status_code == 404
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_type == "routing_rule")).all()
    assert sorted(actions) == [
        "routing_rule.create",
        "routing_rule.create",
        "routing_rule.delete",
        "routing_rule.update",
    ]


def test_rule_validation(client, admin_headers, department, rule):
    it = department("Tech")
    bad = [
        {"department_id": it},
        {"department_id": it, "keywords": [""]},
        {"department_id": "00000000-0000-0000-0000-000000000000", "keywords": ["vpn"]},
        {"department_id": it, "keywords": ["vpn"], "extra": 1},
    ]
    for body in bad:
        response = client.post("/api/routing-rules", json=body, headers=admin_headers)
        assert response.status_code == 400, body
    only_category = rule(it, category="network")
    emptied = client.put(f"/api/routing-rules/{only_category['id']}", json={"category": None}, headers=admin_headers)
    assert emptied.status_code == 400


def test_only_admins_touch_rules(client, auth_headers, admin_headers, department, rule, agent, manager):
    it = department("Tech")
    created = rule(it, ["vpn"])
    lead = agent(it, "lead")
    for user in (lead, manager):
        headers = auth_headers(user)
        assert client.get("/api/routing-rules", headers=headers).status_code == 403
        assert client.get(f"/api/routing-rules/{created['id']}", headers=headers).status_code == 403
        body = {"department_id": it, "keywords": ["x"]}
        assert client.post("/api/routing-rules", json=body, headers=headers).status_code == 403
        assert client.put(f"/api/routing-rules/{created['id']}", json=body, headers=headers).status_code == 403
        assert client.delete(f"/api/routing-rules/{created['id']}", headers=headers).status_code == 403


# --- The department ------------------------------------------------------------------------------------------------


def test_the_best_matching_rule_wins(client, admin_headers, department, rule, file_ticket):
    it, hr = department("Tech"), department("People")
    rule(it, ["laptop"])
    hr_rule = rule(hr, ["payroll", "salary"])
    ticket = file_ticket("Salary question", "My payroll slip and my laptop disagree on the salary.")
    decision = routed(client, admin_headers, ticket)
    assert decision["department"]["id"] == hr
    assert decision["routing"]["rule_id"] == hr_rule["id"]
    assert sorted(decision["routing"]["matched"]) == ["payroll", "salary"]
    assert decision["routing"]["router"] == "keywords"


def test_keywords_match_whole_words_and_phrases(client, admin_headers, department, rule, file_ticket):
    it = department("Tech")
    rule(it, ["vpn", "access card"])
    assert file_ticket("Vpnx is broken", "The vpnx tool will not start at all.")["department"]["name"] == "Triage"
    phrase = file_ticket("Lost my ACCESS  card", "I lost my Access Card yesterday evening.")
    assert routed(client, admin_headers, phrase)["department"]["id"] == it


def test_a_matching_category_weighs_two_keywords(client, admin_headers, department, rule, file_ticket):
    it, hr = department("Tech"), department("People")
    rule(it, ["laptop"])
    rule(hr, category="Benefits")
    ticket = file_ticket("Laptop allowance", "Is the laptop allowance taxed?", category="benefits")
    assert routed(client, admin_headers, ticket)["department"]["id"] == hr


def test_ties_go_to_the_higher_priority(client, admin_headers, department, rule, file_ticket):
    it, hr = department("Tech"), department("People")
    rule(it, ["onboarding"], priority=1)
    rule(hr, ["onboarding"], priority=7)
    ticket = file_ticket("Onboarding a new hire", "Onboarding for a new hire next Monday.")
    assert routed(client, admin_headers, ticket)["department"]["id"] == hr


def test_no_match_goes_to_triage(client, admin_headers, department, rule, file_ticket):
    rule(department("Tech"), ["vpn"])
    ticket = routed(client, admin_headers, file_ticket())
    assert ticket["department"]["id"] == str(tickets.triage_department().id)
    assert ticket["routing"]["rule_id"] is None
    assert "triage" in ticket["routing"]["department"]


# --- The agent ---------------------------------------------------------------------------------------------------


def test_no_agent_leaves_the_ticket_unassigned(client, admin_headers, department, rule, file_ticket):
    rule(department("Tech"), ["vpn"])
    ticket = routed(client, admin_headers, file_ticket("VPN is down", "The vpn drops every minute."))
    assert ticket["status"] == "open" and ticket["assignee"] is None
    assert ticket["routing"]["assignee"].startswith("No agent")


def test_the_least_loaded_agent_gets_it_round_robin_on_ties(client, department, rule, agent, file_ticket):
    it = department("Tech")
    rule(it, ["vpn"])
    first, second, third = agent(it), agent(it, "lead"), agent(it)

    def next_assignee():
        return file_ticket("VPN is down", "The vpn drops every minute.")["assignee"]["id"]

    # Nobody assigned yet: by user id among equals. Then round robin while loads are equal.
    order = sorted([first, second, third], key=lambda user: str(user.id))
    assert [next_assignee() for _ in range(6)] == [str(user.id) for user in order * 2]


def test_load_counts_only_active_tickets_of_the_department(client, auth_headers, department, rule, agent, file_ticket):
    it = department("Tech")
    rule(it, ["vpn"])
    busy = agent(it)
    tickets_of_busy = [file_ticket("VPN is down", "The vpn drops every minute.") for _ in range(2)]
    assert {ticket["assignee"]["id"] for ticket in tickets_of_busy} == {str(busy.id)}
    idle = agent(it)
    assert file_ticket("VPN is down", "The vpn drops every minute.")["assignee"]["id"] == str(idle.id)
    # `idle` now holds 1, `busy` 2; resolving both of busy's makes busy the lighter one.
    for ticket in tickets_of_busy:
        response = client.patch(
            f"/api/tickets/{ticket['id']}/status", json={"status": "resolved"}, headers=auth_headers(busy)
        )
        assert response.status_code == 200, response.json
    assert file_ticket("VPN is down", "The vpn drops every minute.")["assignee"]["id"] == str(busy.id)


def test_inactive_agents_get_nothing(client, department, rule, agent, file_ticket):
    it = department("Tech")
    rule(it, ["vpn"])
    away = agent(it)
    away.is_active = False
    db.session.commit()
    ticket = file_ticket("VPN is down", "The vpn drops every minute.")
    assert ticket["assignee"] is None


def test_routing_is_shown_to_agents_not_to_the_requester(client, auth_headers, department, rule, agent, make_user):
    it = department("Tech")
    rule(it, ["vpn"])
    worker, stranger, requester = agent(it), agent(department("People")), make_user()
    body = {"title": "VPN is down", "description": "The vpn drops every minute.", "urgency": "high"}
    created = client.post("/api/tickets", json=body, headers=auth_headers(requester)).json
    assert created["routing"] is None
    url = f"/api/tickets/{created['id']}"
    assert client.get(url, headers=auth_headers(requester)).json["routing"] is None
    seen = client.get(url, headers=auth_headers(worker)).json["routing"]
    assert seen["matched"] == ["vpn"] and seen["assignee_id"] == str(worker.id)
    assert client.get(url, headers=auth_headers(stranger)).status_code == 404
    listed = client.get("/api/tickets", headers=auth_headers(worker)).json["items"]
    assert [item["routing"]["rule_id"] for item in listed] == [seen["rule_id"]]


def test_the_router_is_chosen_by_setting():
    assert read_environment({"TICKET_ROUTER": "Keywords"}) == {"TICKET_ROUTER": "keywords"}
    with pytest.raises(ConfigError, match="TICKET_ROUTER"):
        read_environment({"TICKET_ROUTER": "llm"})
    with pytest.raises(ConfigError, match="TICKET_CONTENT_CHECK"):
        read_environment({"TICKET_CONTENT_CHECK": "model"})


# --- The content check and the review queue ----------------------------------------------------------------------


def test_admins_manage_blocked_terms(client, auth_headers, admin_headers, member):
    created = client.post("/api/admin/blocked-terms", json={"term": "  Crypto   Giveaway "}, headers=admin_headers)
    assert created.status_code == 201 and created.json["term"] == "crypto giveaway"
    again = client.post("/api/admin/blocked-terms", json={"term": "CRYPTO giveaway"}, headers=admin_headers)
    assert again.status_code == 409
    listed = client.get("/api/admin/blocked-terms", headers=admin_headers).json
    assert [item["term"] for item in listed["items"]] == ["crypto giveaway"]
    headers = auth_headers(member)
    url = f"/api/admin/blocked-terms/{created.json['id']}"
    assert client.get("/api/admin/blocked-terms", headers=headers).status_code == 403
    assert client.post("/api/admin/blocked-terms", json={"term": "x"}, headers=headers).status_code == 403
    assert client.delete(url, headers=headers).status_code == 403
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.delete(url, headers=admin_headers).status_code == 404


@pytest.mark.parametrize(
    ("title", "description", "reason"),
    [
        ("Free crypto giveaway", "Click here for a crypto giveaway today.", "blocked term: crypto giveaway"),
        ("Help me please!!!!!!!!!!", "Nothing works on my machine today.", "a character repeated 10 or more times"),
        ("MY SCREEN IS BLACK", "NOTHING WORKS AND NOBODY ANSWERS ME", "mostly capital letters"),
        (
            "Look at these pages",
            "https://a.example http://b.example www.c.example https://d.example",
            "more than 3 links",
        ),
    ],
    ids=["blocked-term", "repeated-characters", "all-caps", "links"],
)
def test_a_flagged_ticket_is_held_not_routed(
    client, auth_headers, admin_headers, department, rule, agent, member, title, description, reason
):
    client.post("/api/admin/blocked-terms", json={"term": "crypto giveaway"}, headers=admin_headers)
    catch_all = department("Tech")
    rule(catch_all, ["crypto", "help", "screen", "pages"])
    agent(catch_all)
    body = {"title": title, "description": description, "urgency": "low"}
    created = client.post("/api/tickets", json=body, headers=auth_headers(member))
    assert created.status_code == 201, created.json
    ticket = created.json
    assert ticket["status"] == "held" and ticket["misuse_flag"] is True
    assert ticket["department"] is None and ticket["assignee"] is None
    assert ticket["misuse_reasons"] is None  # the requester does not learn what tripped the check
    seen = routed(client, admin_headers, ticket)
    assert seen["misuse_reasons"] == [reason] and seen["routing"] is None


def test_harmless_text_passes_the_check(client, admin_headers, file_ticket):
    client.post("/api/admin/blocked-terms", json={"term": "giveaway"}, headers=admin_headers)
    ticket = file_ticket("VPN at HQ", "See https://intranet.example for the VPN error (code 42).")
    assert ticket["status"] == "open" and ticket["misuse_flag"] is False


def test_admins_list_release_and_reject_held_tickets(
    client, auth_headers, admin_headers, department, rule, agent, make_user
):
    client.post("/api/admin/blocked-terms", json={"term": "lottery"}, headers=admin_headers)
    it = department("Tech")
    rule(it, ["vpn"])
    worker, requester = agent(it), make_user()
    body = {"title": "VPN lottery", "description": "Won the lottery, need vpn access.", "urgency": "low"}
    first = client.post("/api/tickets", json=body, headers=auth_headers(requester)).json
    second = client.post("/api/tickets", json=body, headers=auth_headers(requester)).json
    held = client.get("/api/tickets?status=held", headers=admin_headers).json
    assert sorted(item["id"] for item in held["items"]) == sorted([first["id"], second["id"]])
    assert client.get("/api/tickets?status=held", headers=auth_headers(worker)).json["items"] == []
    for user, status in ((worker, 404), (requester, 403)):  # a held ticket is in no department's queue
        assert client.post(f"/api/tickets/{first['id']}/release", headers=auth_headers(user)).status_code == status
        assert client.post(f"/api/tickets/{first['id']}/reject", headers=auth_headers(user)).status_code == status

    released = client.post(f"/api/tickets/{first['id']}/release", headers=admin_headers)
    assert released.status_code == 200, released.json
    assert released.json["status"] == "assigned" and released.json["department"]["id"] == it
    assert released.json["assignee"]["id"] == str(worker.id) and released.json["misuse_flag"] is True
    rejected = client.post(f"/api/tickets/{second['id']}/reject", headers=admin_headers)
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    for ticket in (first, second):
        assert client.post(f"/api/tickets/{ticket['id']}/release", headers=admin_headers).status_code == 409
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.action.like("ticket.re%"))).all()
    assert sorted(actions) == ["ticket.reject", "ticket.release"]
