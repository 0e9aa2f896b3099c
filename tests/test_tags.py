"""Task tags: normalisation, limits, replacing, the `tag` filter, `GET /api/tags` and the queries a page costs."""

import uuid
from unittest.mock import ANY

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks import service as tasks_service
from finstack.tasks.models import TaskTag

FUTURE = "2030-06-01T09:00:00+00:00"


def create(client, headers, **fields):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, **fields}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def stored_tags(task_id):
    rows = db.session.scalars(sa.select(TaskTag.tag).where(TaskTag.task_id == uuid.UUID(task_id)).order_by(TaskTag.tag))
    return list(rows)


def listed(client, headers, query):
    response = client.get(f"/api/tasks?{query}", headers=headers)
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json["items"]}


def test_tags_default_to_empty_and_are_normalised(client, member, auth_headers):
    headers = auth_headers(member)
    assert create(client, headers)["tags"] == []
    task = create(client, headers, tags=["  Urgent ", "VIP", "urgent", "vip", "Q3-report"])
    assert task["tags"] == ["q3-report", "urgent", "vip"]
    assert stored_tags(task["id"]) == ["q3-report", "urgent", "vip"]
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).json["tags"] == ["q3-report", "urgent", "vip"]
    assert len(create(client, headers, tags=["x" * 40, *(f"t{n}" for n in range(19))])["tags"]) == 20


@pytest.mark.parametrize(
    "tags",
    [
        ["x" * 41],
        [""],
        ["   "],
        [f"t{n}" for n in range(21)],
        "urgent",
        [7],
        None,
    ],
    ids=["too-long", "empty", "blank", "twenty-one", "not-a-list", "not-a-string", "null"],
)
def test_bad_tags_are_400(client, member, auth_headers, tags):
    response = client.post(
        "/api/tasks",
        json={"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, "tags": tags},
        headers=auth_headers(member),
    )
    assert response.status_code == 400, response.json
    assert "tags" in response.json["details"]


def test_put_replaces_the_tags_audited_and_versioned(client, member, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, tags=["a", "b"])
    response = client.put(f"/api/tasks/{task['id']}", json={"tags": ["B", "c"], "version": 1}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["tags"] == ["b", "c"]
    assert response.json["version"] == 2
    assert response.json["updated_at"] > task["updated_at"]
    assert stored_tags(task["id"]) == ["b", "c"]
    entry = db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "task.update", AuditLog.entity_id == uuid.UUID(task["id"]))
    ).one()
    assert entry.changes == {"tags": {"from": ["a", "b"], "to": ["b", "c"]}}

    same = client.put(f"/api/tasks/{task['id']}", json={"tags": ["c", "b"]}, headers=headers)
    assert same.json["version"] == 2  # nothing changed
    cleared = client.put(f"/api/tasks/{task['id']}", json={"tags": []}, headers=headers)
    assert cleared.json["tags"] == [] and stored_tags(task["id"]) == []
    assert client.put(f"/api/tasks/{task['id']}", json={"tags": ["x" * 41]}, headers=headers).status_code == 400


def test_tag_changes_reach_live_clients(client, member, auth_headers, socket_client):
    sock = socket_client(member)
    headers = auth_headers(member)
    task = create(client, headers)
    response = client.put(f"/api/tasks/{task['id']}", json={"tags": ["live"]}, headers=headers)
    assert sock.wait_for("task_updated") == {**response.json, "seq": ANY}
    assert response.json["tags"] == ["live"]


def test_a_trashed_task_keeps_its_tags_until_purged(client, member, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, tags=["gone"])
    assert client.delete(f"/api/tasks/{task['id']}", headers=headers).status_code == 204
    assert stored_tags(task["id"]) == ["gone"]  # for a restore
    assert tasks_service.purge_trash(utcnow()) == 1
    assert stored_tags(task["id"]) == []


def test_filter_by_one_and_by_several_tags(client, member, auth_headers, make_user):
    headers = auth_headers(member)
    both = create(client, headers, tags=["red", "blue"])
    red = create(client, headers, tags=["red"], priority="high")
    blue = create(client, headers, tags=["blue", "green"])
    create(client, headers)

    assert listed(client, headers, "tag=red") == {both["id"], red["id"]}
    assert listed(client, headers, "tag=RED") == {both["id"], red["id"]}  # normalised like input
    assert listed(client, headers, "tag=blue") == {both["id"], blue["id"]}
    assert listed(client, headers, "tag=red&tag=blue") == {both["id"]}
    assert listed(client, headers, "tag=red&tag=green") == set()
    assert listed(client, headers, "tag=red&priority=high") == {red["id"]}
    assert listed(client, headers, "tag=nothing") == set()
    response = client.get("/api/tasks?tag=red&tag=blue", headers=headers)
    assert response.json["pagination"]["total"] == 1
    assert client.get(f"/api/tasks?tag={'x' * 41}", headers=headers).status_code == 400


def test_tags_endpoint_counts_orders_and_searches(client, member, manager, auth_headers):
    headers = auth_headers(member)
    create(client, headers, tags=["alpha", "beta", "50%_off"])
    create(client, auth_headers(manager), tags=["beta", "gamma"])
    create(client, headers, tags=["beta", "alphabet"])

    response = client.get("/api/tags", headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["items"] == [
        {"tag": "beta", "count": 3},
        {"tag": "50%_off", "count": 1},
        {"tag": "alpha", "count": 1},
        {"tag": "alphabet", "count": 1},
        {"tag": "gamma", "count": 1},
    ]
    assert response.json["pagination"]["total"] == 5

    def tags(query):
        return [item["tag"] for item in client.get(f"/api/tags?{query}", headers=headers).json["items"]]

    assert tags("search=ALPH") == ["alpha", "alphabet"]
    assert tags("search=bet") == ["beta", "alphabet"]
    assert tags("search=%25") == ["50%_off"]  # literal, not a LIKE wildcard
    assert tags("search=_") == ["50%_off"]
    assert tags("search=") == ["beta", "50%_off", "alpha", "alphabet", "gamma"]
    page = client.get("/api/tags?per_page=2&page=2", headers=headers).json
    assert [item["tag"] for item in page["items"]] == ["alpha", "alphabet"]
    assert page["pagination"] == {
        "page": 2, "per_page": 2, "total": 5, "pages": 3, "total_exact": True, "next_cursor": ANY
    }
    assert client.get("/api/tags").status_code == 401
    assert client.get(f"/api/tags?search={'x' * 41}", headers=headers).status_code == 400


def test_a_page_of_tagged_tasks_costs_the_same_queries_at_20_and_40(client, member, auth_headers):
    headers = auth_headers(member)

    def queries_for_page(per_page):
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(f"/api/tasks?per_page={per_page}", headers=headers)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert len(response.json["items"]) == per_page
        assert all(len(item["tags"]) == 3 for item in response.json["items"])
        return len(statements)

    for number in range(40):
        create(client, headers, tags=[f"t{number}", "shared", f"odd{number % 2}"])
    assert queries_for_page(20) == queries_for_page(40)
