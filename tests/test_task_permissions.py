"""Who may change what: the permission matrix of tasks, each cell allowed or refused, checked in the database.

| action                 | creator | assignee | manager | admin | other member |
|------------------------|---------|----------|---------|-------|--------------|
| read                   | yes     | yes      | yes     | yes   | yes          |
| update / status change | yes     | yes      | yes     | yes   | 403          |
| delete                 | yes     | 403      | yes     | yes   | 403          |
"""

import uuid

import pytest
from sqlalchemy.orm import Session

from finstack.extensions import db
from finstack.tasks.models import Task

ACTORS = ("creator", "assignee", "manager", "admin", "other")
CAN_EDIT = {"creator", "assignee", "manager", "admin"}
CAN_DELETE = {"creator", "manager", "admin"}


def stored(task_id):
    with Session(db.engine, expire_on_commit=False) as session:
        return session.get(Task, uuid.UUID(str(task_id)))


@pytest.fixture
def people(make_user, admin, manager):
    """Everyone in the matrix: two members involved in the task, one who is not, a manager and an admin."""
    return {
        "creator": make_user(role="member"),
        "assignee": make_user(role="member"),
        "other": make_user(role="member"),
        "manager": manager,
        "admin": admin,
    }


@pytest.fixture
def task_id(client, auth_headers, people):
    """A task the creator made and assigned to the assignee, created through the API."""
    response = client.post(
        "/api/tasks",
        json={
            "entity_name": "Acme Ltd",
            "task_type": "Call",
            "task_time": "2030-01-01T09:00:00Z",
            "contact_person_id": str(people["assignee"].id),
            "note": "original",
        },
        headers=auth_headers(people["creator"]),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def assert_forbidden(response):
    assert response.status_code == 403, response.json
    assert set(response.json) == {"error", "code", "details"}


@pytest.mark.parametrize("actor", ACTORS)
def test_everyone_reads_the_task(client, auth_headers, people, task_id, actor):
    headers = auth_headers(people[actor])
    assert client.get(f"/api/tasks/{task_id}", headers=headers).status_code == 200
    listed = client.get("/api/tasks", headers=headers)
    assert [item["id"] for item in listed.json["items"]] == [task_id]


@pytest.mark.parametrize("actor", ACTORS)
def test_update(client, auth_headers, people, task_id, actor):
    response = client.put(
        f"/api/tasks/{task_id}", json={"note": f"by {actor}", "priority": "high"}, headers=auth_headers(people[actor])
    )
    row = stored(task_id)
    if actor in CAN_EDIT:
        assert response.status_code == 200, response.json
        assert response.json["note"] == f"by {actor}"
        assert (row.note, row.priority, row.version) == (f"by {actor}", "high", 2)
    else:
        assert_forbidden(response)
        assert (row.note, row.priority, row.version) == ("original", "medium", 1)


@pytest.mark.parametrize("actor", ACTORS)
def test_status_change(client, auth_headers, people, task_id, actor):
    response = client.patch(
        f"/api/tasks/{task_id}/status", json={"status": "closed"}, headers=auth_headers(people[actor])
    )
    row = stored(task_id)
    if actor in CAN_EDIT:
        assert response.status_code == 200, response.json
        assert response.json["status"] == "closed"
        assert (row.status, row.version) == ("closed", 2)
        assert row.closed_at is not None
    else:
        assert_forbidden(response)
        assert (row.status, row.version, row.closed_at) == ("open", 1, None)


@pytest.mark.parametrize("actor", ACTORS)
def test_delete(client, auth_headers, people, task_id, actor):
    response = client.delete(f"/api/tasks/{task_id}", headers=auth_headers(people[actor]))
    if actor in CAN_DELETE:
        assert response.status_code == 204
        assert stored(task_id).deleted_at is not None  # in the trash
    else:
        assert_forbidden(response)
        assert stored(task_id).deleted_at is None


@pytest.mark.parametrize("actor", ACTORS)
def test_bulk_status(client, auth_headers, people, task_id, actor):
    response = client.post(
        "/api/tasks/bulk-status",
        json={"task_ids": [task_id], "status": "cancelled"},
        headers=auth_headers(people[actor]),
    )
    assert response.status_code == 200, response.json
    row = stored(task_id)
    if actor in CAN_EDIT:
        assert response.json == {"updated": [task_id], "not_found": [], "forbidden": []}
        assert (row.status, row.version) == ("cancelled", 2)
    else:
        assert response.json == {"updated": [], "not_found": [], "forbidden": [task_id]}
        assert (row.status, row.version) == ("open", 1)


def test_refusal_comes_before_version_check(client, auth_headers, people, task_id):
    """A stranger learns nothing about the task's version: 403, not 409."""
    headers = auth_headers(people["other"])
    assert_forbidden(client.put(f"/api/tasks/{task_id}", json={"note": "x", "version": 9}, headers=headers))
    assert_forbidden(
        client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed", "version": 9}, headers=headers)
    )
    assert stored(task_id).version == 1


def test_reassigning_moves_the_right_to_edit(client, auth_headers, people, task_id):
    """The assignee's rights go with the assignment; the creator keeps theirs."""
    assignee, other, creator = (auth_headers(people[name]) for name in ("assignee", "other", "creator"))
    handed_over = client.put(
        f"/api/tasks/{task_id}", json={"contact_person_id": str(people["other"].id)}, headers=assignee
    )
    assert handed_over.status_code == 200, handed_over.json

    assert_forbidden(client.put(f"/api/tasks/{task_id}", json={"note": "old assignee"}, headers=assignee))
    assert client.put(f"/api/tasks/{task_id}", json={"note": "new assignee"}, headers=other).status_code == 200
    assert_forbidden(client.delete(f"/api/tasks/{task_id}", headers=other))
    assert client.put(f"/api/tasks/{task_id}", json={"note": "creator"}, headers=creator).status_code == 200
    row = stored(task_id)
    assert (row.note, row.contact_person_id) == ("creator", people["other"].id)


def test_unassigned_task_is_the_creators_alone(client, auth_headers, people):
    response = client.post(
        "/api/tasks",
        json={"entity_name": "Solo", "task_type": "Call", "task_time": "2030-01-01T09:00:00Z"},
        headers=auth_headers(people["creator"]),
    )
    task_id = response.json["id"]
    for name in ("assignee", "other"):
        assert_forbidden(client.put(f"/api/tasks/{task_id}", json={"note": name}, headers=auth_headers(people[name])))
    for name in ("creator", "manager", "admin"):
        response = client.put(f"/api/tasks/{task_id}", json={"note": name}, headers=auth_headers(people[name]))
        assert response.status_code == 200, response.json
    assert stored(task_id).note == "admin"


def test_managers_and_admins_may_change_each_others_tasks(client, auth_headers, people):
    for author, editor in (("manager", "admin"), ("admin", "manager")):
        created = client.post(
            "/api/tasks",
            json={"entity_name": author, "task_type": "Call", "task_time": "2030-01-01T09:00:00Z"},
            headers=auth_headers(people[author]),
        ).json
        headers = auth_headers(people[editor])
        assert (
            client.patch(f"/api/tasks/{created['id']}/status", json={"status": "closed"}, headers=headers).status_code
            == 200
        )
        assert client.delete(f"/api/tasks/{created['id']}", headers=headers).status_code == 204
        assert stored(created["id"]).deleted_at is not None
