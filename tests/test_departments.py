"""Helpdesk departments and their agents: who manages them, the defaults every install has, the delete rule."""

import uuid

import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.extensions import db
from finstack.tickets import service as tickets
from finstack.tickets.models import Department

DEPARTMENT_FIELDS = {"id", "name", "description", "system_key", "created_at", "updated_at"}
AGENT_FIELDS = {"user_id", "user", "role", "added_at", "last_assigned_at"}
TICKET = {"title": "Printer jams", "description": "The third floor printer jams on every page.", "urgency": "low"}


def create_department(client, headers, name="Facilities", **fields):
    response = client.post("/api/departments", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_defaults_are_created_idempotently_by_setup(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["setup"])
        assert result.exit_code == 0, result.output
    rows = db.session.execute(sa.select(Department.system_key, Department.name).order_by(Department.name)).all()
    assert rows == [("hr", "HR"), ("it", "IT"), ("triage", "Triage")]


def test_defaults_survive_a_rename(app):
    tickets.ensure_default_departments()
    it = db.session.scalar(sa.select(Department).where(Department.system_key == "it"))
    it.name = "Information Technology"
    db.session.commit()
    tickets.ensure_default_departments()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 3


def test_a_department_of_the_same_name_is_adopted(client, auth_headers, admin):
    made = create_department(client, auth_headers(admin), name="triage")
    assert tickets.triage_department().id == uuid.UUID(made["id"])
    tickets.ensure_default_departments()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 3


def test_the_first_ticket_brings_the_default_departments_back(client, auth_headers, member):
    """No department exists (tests start empty): the first ticket creates the defaults and lands in Triage."""
    ticket = client.post("/api/tickets", json=TICKET, headers=auth_headers(member))
    assert ticket.status_code == 201 and ticket.json["department"]["name"] == "Triage"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 3


def test_admin_manages_departments(client, auth_headers, admin):
    headers = auth_headers(admin)
    created = create_department(client, headers, description="Buildings")
    assert set(created) == DEPARTMENT_FIELDS
    assert created["system_key"] is None
    url = f"/api/departments/{created['id']}"
    assert client.get(url, headers=headers).json["name"] == "Facilities"
    updated = client.put(url, json={"name": "  Buildings  "}, headers=headers)
    assert updated.status_code == 200 and updated.json["name"] == "Buildings"
    assert client.put(url, json={}, headers=headers).status_code == 400
    listed = client.get("/api/departments", headers=headers).json
    assert [item["name"] for item in listed["items"]] == ["Buildings"]
    assert listed["pagination"]["total"] == 1
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_type == "department")).all()
    assert sorted(actions) == ["department.create", "department.delete", "department.update"]


def test_names_are_unique_whatever_their_case(client, auth_headers, admin):
    headers = auth_headers(admin)
    create_department(client, headers)
    response = client.post("/api/departments", json={"name": "FACILITIES"}, headers=headers)
    assert response.status_code == 409 and response.json["code"] == "conflict"


def test_everyone_reads_departments_only_admins_change_them(client, auth_headers, admin, manager, member):
    department = create_department(client, auth_headers(admin))
    url = f"/api/departments/{department['id']}"
    for user in (manager, member):
        headers = auth_headers(user)
        assert client.get("/api/departments", headers=headers).status_code == 200
        assert client.get(url, headers=headers).status_code == 200
        assert client.post("/api/departments", json={"name": "Mine"}, headers=headers).status_code == 403
        assert client.put(url, json={"name": "Mine"}, headers=headers).status_code == 403
        assert client.delete(url, headers=headers).status_code == 403


def test_delete_refused_while_tickets_name_it_and_for_triage(client, auth_headers, admin, member):
    headers = auth_headers(admin)
    department = create_department(client, headers)
    ticket = client.post("/api/tickets", json=TICKET, headers=auth_headers(member)).json
    moved = client.patch(
        f"/api/tickets/{ticket['id']}/department", json={"department_id": department["id"]}, headers=headers
    )
    assert moved.status_code == 200, moved.json
    refused = client.delete(f"/api/departments/{department['id']}", headers=headers)
    assert refused.status_code == 409 and refused.json["details"] == {"tickets": 1}
    triage = tickets.triage_department()
    assert client.delete(f"/api/departments/{triage.id}", headers=headers).status_code == 409


def test_agents_are_added_listed_and_removed(client, auth_headers, admin, make_user):
    headers = auth_headers(admin)
    department = create_department(client, headers)
    agent, lead = make_user(full_name="Zed Agent"), make_user(full_name="Amy Lead")
    url = f"/api/departments/{department['id']}/agents"
    added = client.post(url, json={"user_id": str(agent.id)}, headers=headers)
    assert added.status_code == 201 and added.json["role"] == "agent"
    assert set(added.json) == AGENT_FIELDS
    assert client.post(url, json={"user_id": str(lead.id), "role": "lead"}, headers=headers).status_code == 201
    assert client.post(url, json={"user_id": str(agent.id)}, headers=headers).status_code == 409
    assert client.post(url, json={"user_id": str(agent.id), "role": "boss"}, headers=headers).status_code == 400
    listed = client.get(url, headers=headers).json
    assert [(item["user"]["full_name"], item["role"]) for item in listed["items"]] == [
        ("Amy Lead", "lead"),
        ("Zed Agent", "agent"),
    ]
    assert client.delete(f"{url}/{agent.id}", headers=headers).status_code == 204
    assert client.delete(f"{url}/{agent.id}", headers=headers).status_code == 404
    assert [item["user_id"] for item in client.get(url, headers=headers).json["items"]] == [str(lead.id)]


def test_an_inactive_or_unknown_user_cannot_become_an_agent(client, auth_headers, admin, make_user):
    headers = auth_headers(admin)
    department = create_department(client, headers)
    url = f"/api/departments/{department['id']}/agents"
    gone = make_user()
    gone.is_active = False
    db.session.commit()
    for user_id in (gone.id, "00000000-0000-0000-0000-000000000000"):
        response = client.post(url, json={"user_id": str(user_id)}, headers=headers)
        assert response.status_code == 400 and "user_id" in response.json["details"]


def test_who_lists_and_manages_agents(client, auth_headers, admin, make_user):
    headers = auth_headers(admin)
    department = create_department(client, headers)
    other = create_department(client, headers, name="Other")
    agent, outsider_agent, requester = make_user(), make_user(), make_user()
    url = f"/api/departments/{department['id']}/agents"
    client.post(url, json={"user_id": str(agent.id)}, headers=headers)
    client.post(f"/api/departments/{other['id']}/agents", json={"user_id": str(outsider_agent.id)}, headers=headers)
    assert client.get(url, headers=auth_headers(agent)).status_code == 200
    for user in (outsider_agent, requester):
        assert client.get(url, headers=auth_headers(user)).status_code == 403
    for user in (agent, requester):
        assert client.post(url, json={"user_id": str(user.id)}, headers=auth_headers(user)).status_code == 403
        assert client.delete(f"{url}/{agent.id}", headers=auth_headers(user)).status_code == 403
    missing = "/api/departments/00000000-0000-0000-0000-000000000000/agents"
    assert client.get(missing, headers=headers).status_code == 404


def test_removing_an_agent_requeues_their_active_tickets(client, auth_headers, admin, make_user, member):
    headers = auth_headers(admin)
    it = tickets.triage_department()
    agent = make_user()
    url = f"/api/departments/{it.id}/agents"
    client.post(url, json={"user_id": str(agent.id)}, headers=headers)
    ticket = client.post("/api/tickets", json=TICKET, headers=auth_headers(member)).json
    assert ticket["status"] == "assigned" and ticket["assignee"]["id"] == str(agent.id)
    assert client.delete(f"{url}/{agent.id}", headers=headers).status_code == 204
    after = client.get(f"/api/tickets/{ticket['id']}", headers=headers).json
    assert after["status"] == "open" and after["assignee"] is None
