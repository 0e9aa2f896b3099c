"""A task's activity (GET /api/tasks/<id>/activity) and my own (GET /api/activity), read from the audit log
through its task links (`audit_log_tasks`): who, what, before → after, when; newest first, in the list envelope."""

import io
import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finstack.audit import service as audit
from finstack.audit.models import AuditLog, AuditLogTask
from finstack.extensions import db
from finstack.tasks.models import Task

MISSING = "00000000-0000-0000-0000-000000000000"
TASK = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00"}


def activity(client, headers, task_id, **query):
    response = client.get(f"/api/tasks/{task_id}/activity", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def actions(body):
    return [item["action"] for item in body["items"]]


@pytest.fixture
def people(make_user, admin, manager):
    return {"admin": admin, "manager": manager, "owner": make_user(full_name="Olive Owner"), "other": make_user()}


@pytest.fixture
def history(client, auth_headers, people):
    """A task's life through the API: created, updated, commented (edited, deleted), a file, a bulk status change."""
    owner, manager = auth_headers(people["owner"]), auth_headers(people["manager"])
    task = client.post("/api/tasks", json={**TASK, "contact_person_id": str(people["other"].id)}, headers=owner).json
    bystander = client.post("/api/tasks", json=TASK, headers=owner).json
    url = f"/api/tasks/{task['id']}"
    assert client.put(url, json={"note": "bring the ledger", "priority": "high"}, headers=owner).status_code == 200
    comment = client.post(f"{url}/comments", json={"content": "first"}, headers=owner).json
    assert client.patch(f"{url}/comments/{comment['id']}", json={"content": "second"}, headers=owner).status_code == 200
    files = {"file": (io.BytesIO(b"plain text"), "notes.txt")}
    assert client.post(f"{url}/attachments", data=files, headers=owner).status_code == 201
    change = {"task_ids": [task["id"], bystander["id"]], "status": "in_progress"}
    bulk = client.post("/api/tasks/bulk-status", json=change, headers=manager)
    assert bulk.status_code == 200, bulk.json
    assert client.delete(f"{url}/comments/{comment['id']}", headers=manager).status_code == 204
    return {"task": task, "bystander": bystander, "comment": comment}


EXPECTED = [
    "comment.delete",
    "task.bulk_status",
    "attachment.create",
    "comment.update",
    "comment.create",
    "task.update",
    "task.create",
]


def test_a_tasks_history_newest_first(client, auth_headers, people, history):
    body = activity(client, auth_headers(people["other"]), history["task"]["id"])
    assert actions(body) == EXPECTED
    assert body["pagination"] == {
        "page": 1, "per_page": 20, "total": len(EXPECTED), "pages": 1, "total_exact": True, "next_cursor": None
    }
    update = body["items"][EXPECTED.index("task.update")]
    assert update["changes"] == {
        "note": {"from": None, "to": "bring the ledger"},
        "priority": {"from": "medium", "to": "high"},
    }
    owner = people["owner"]
    assert update["actor"] == {"id": str(owner.id), "username": owner.username, "full_name": "Olive Owner"}
    assert update["actor_label"] is None
    assert update["entity_type"] == "task" and update["entity_id"] == history["task"]["id"]
    assert set(update) == {"id", "action", "entity_type", "entity_id", "actor", "actor_label", "changes", "created_at"}
    edit = body["items"][EXPECTED.index("comment.update")]
    assert edit["entity_type"] == "comment" and edit["entity_id"] == history["comment"]["id"]
    assert edit["changes"]["content"] == {"from": "first", "to": "second"}
    assert body["items"][0]["actor"]["id"] == str(people["manager"].id)
    times = [item["created_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True)


def test_a_bulk_change_shows_in_each_task_without_naming_the_others(client, auth_headers, people, history):
    for task_id in (history["task"]["id"], history["bystander"]["id"]):
        bulk = next(
            item for item in activity(client, auth_headers(people["admin"]), task_id)["items"]
            if item["action"] == "task.bulk_status"
        )
        assert bulk["changes"] == {"status": "in_progress"}
        assert bulk["entity_id"] is None
    # One audit entry, one link per task.
    entries = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "task.bulk_status")).all()
    assert len(entries) == 1
    links = db.session.scalars(sa.select(AuditLogTask.task_id).where(AuditLogTask.audit_id == entries[0].id)).all()
    assert sorted(str(task_id) for task_id in links) == sorted([history["task"]["id"], history["bystander"]["id"]])


def test_paging(client, auth_headers, people, history):
    headers = auth_headers(people["owner"])
    first = activity(client, headers, history["task"]["id"], per_page=3)
    second = activity(client, headers, history["task"]["id"], per_page=3, page=3)
    assert actions(first) == EXPECTED[:3]
    assert actions(second) == EXPECTED[6:]
    assert first["pagination"] == {
        "page": 1, "per_page": 3, "total": 7, "pages": 3, "total_exact": True, "next_cursor": ANY
    }


def test_an_entry_written_by_the_cli_has_a_label_and_no_actor(client, auth_headers, people):
    task = client.post("/api/tasks", json=TASK, headers=auth_headers(people["owner"])).json
    note = {"note": {"from": None, "to": "x"}}
    audit.record(audit.SystemActor("cli:root"), "task.update", "task", uuid.UUID(task["id"]), note)
    db.session.commit()
    latest = activity(client, auth_headers(people["owner"]), task["id"])["items"][0]
    assert latest["actor"] is None
    assert latest["actor_label"] == "cli:root"


@pytest.mark.parametrize("role", ["admin", "manager", "member"])
def test_any_reader_of_the_task_sees_it(client, auth_headers, make_user, people, history, role):
    assert actions(activity(client, auth_headers(make_user(role=role)), history["task"]["id"])) == EXPECTED


def test_missing_and_trashed_tasks_are_404(client, auth_headers, people, history):
    headers = auth_headers(people["admin"])
    assert client.get(f"/api/tasks/{MISSING}/activity", headers=headers).status_code == 404
    task = db.session.get(Task, uuid.UUID(history["task"]["id"]))
    task.deleted_at = datetime.now(UTC)
    db.session.commit()
    response = client.get(f"/api/tasks/{history['task']['id']}/activity", headers=headers)
    assert response.status_code == 404
    assert response.json["code"] == "not_found"


def test_outsider_of_a_private_project_gets_404(client, auth_headers, people, make_user):
    headers = auth_headers(people["manager"])
    secret = {"name": "Secret", "key": "SEC", "visibility": "private"}
    project = client.post("/api/projects", json=secret, headers=headers)
    task = client.post("/api/tasks", json={**TASK, "project_id": project.json["id"]}, headers=headers).json
    response = client.get(f"/api/tasks/{task['id']}/activity", headers=auth_headers(make_user()))
    assert response.status_code == 404


def test_activity_needs_a_token_and_refuses_unknown_parameters(client, auth_headers, people, history):
    url = f"/api/tasks/{history['task']['id']}/activity"
    assert client.get(url).status_code == 401
    response = client.get(url, query_string={"sort": "asc"}, headers=auth_headers(people["owner"]))
    assert response.status_code == 400
    assert response.json["details"] == {"sort": ["Unknown field."]}


# --- GET /api/activity: my own actions -------------------------------------------------------------------------


def mine(client, headers, **query):
    response = client.get("/api/activity", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_my_activity_is_only_mine(client, auth_headers, people, history):
    owner = mine(client, auth_headers(people["owner"]))
    assert actions(owner) == [
        "attachment.create",
        "comment.update",
        "comment.create",
        "task.update",
        "task.create",
        "task.create",
    ]
    assert {item["actor"]["id"] for item in owner["items"]} == {str(people["owner"].id)}
    manager = mine(client, auth_headers(people["manager"]))
    assert actions(manager) == ["comment.delete", "task.bulk_status"]
    # My own bulk change names every task it touched.
    assert sorted(manager["items"][1]["changes"]["task_ids"]) == sorted(
        [history["task"]["id"], history["bystander"]["id"]]
    )
    assert mine(client, auth_headers(people["other"]))["items"] == []


def test_my_activity_filters(client, auth_headers, people, history):
    headers = auth_headers(people["owner"])
    assert actions(mine(client, headers, action="task.create")) == ["task.create", "task.create"]
    assert actions(mine(client, headers, entity_type="comment")) == ["comment.update", "comment.create"]
    today = datetime.now(UTC).date()
    assert len(mine(client, headers, date_from=today.isoformat())["items"]) == 6
    assert mine(client, headers, date_to=(today - timedelta(days=1)).isoformat())["items"] == []
    assert mine(client, headers, date_from=(today + timedelta(days=1)).isoformat())["items"] == []


@pytest.mark.parametrize(
    "query",
    [{"action": ""}, {"date_from": "yesterday"}, {"date_from": "2030-01-02", "date_to": "2030-01-01"}, {"actor": "x"}],
    ids=["empty-action", "bad-date", "reversed-range", "unknown-field"],
)
def test_my_activity_bad_query_is_400(client, auth_headers, people, query):
    response = client.get("/api/activity", query_string=query, headers=auth_headers(people["owner"]))
    assert response.status_code == 400
    assert response.json["code"] == "validation_failed"


def test_my_activity_needs_a_token(client):
    assert client.get("/api/activity").status_code == 401


def test_a_tasks_history_is_one_query_per_page_whatever_its_length(client, auth_headers, people):
    headers = auth_headers(people["owner"])
    task = client.post("/api/tasks", json=TASK, headers=headers).json

    def statements():
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            activity(client, headers, task["id"])
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    short = statements()
    for number in range(25):
        client.put(f"/api/tasks/{task['id']}", json={"note": f"note {number}"}, headers=headers)
    assert statements() == short


def test_the_migration_backfills_the_links_of_entries_written_before_it(client, auth_headers, people, history):
    """On the session's database (SQLite or PostgreSQL): undo 0011, then redo it; its backfill links the existing
    entries as `audit.record` did: by entity_id, by changes.task_ids (bulk) and by changes.task_id (comments, files)."""
    headers = auth_headers(people["other"])
    before = {task_id: activity(client, headers, history[task_id]["id"]) for task_id in ("task", "bystander")}
    links = sa.select(AuditLogTask.audit_id, AuditLogTask.task_id, AuditLogTask.created_at)
    written = set(db.session.execute(links).all())
    db.session.remove()
    downgrade(revision="0008")  # below 0011, whatever migrations follow it
    assert "audit_log_tasks" not in sa.inspect(db.engine).get_table_names()
    upgrade()
    assert set(db.session.execute(links).all()) == written
    for task_id, body in before.items():
        assert activity(client, headers, history[task_id]["id"]) == body
