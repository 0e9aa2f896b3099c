"""GET /api/dashboard: my recent tasks, my active tasks by status, due soon, overdue, my projects' progress, my
notifications; exact on a hand-made data set, trashed tasks left out, a constant number of statements."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.projects.models import Project, ProjectMember
from finstack.tasks.models import Task

URL = "/api/dashboard"
NOW = datetime.now(UTC)


def add_task(creator, assignee, name, *, status="open", due_in_days=30, created_days_ago=10, project=None,
             trashed=False):
    task = Task(
        entity_name=name,
        task_type="Call",
        task_time=NOW + timedelta(days=due_in_days),
        status=status,
        created_by=creator.id,
        contact_person_id=assignee.id if assignee else None,
        project_id=uuid.UUID(project["id"]) if project else None,
        date_created=NOW - timedelta(days=created_days_ago),
        closed_at=NOW if status == "closed" else None,
        deleted_at=NOW if trashed else None,
    )
    db.session.add(task)
    return task


@pytest.fixture
def world(client, auth_headers, make_user, admin):
    me, other = make_user(full_name="Mia Me"), make_user(full_name="Otto Other")
    headers = auth_headers(admin)
    team = client.post("/api/teams", json={"name": "Ops"}, headers=headers).json
    body = {"user_id": str(me.id), "role": "member"}
    assert client.post(f"/api/teams/{team['id']}/members", json=body, headers=headers).status_code == 201

    def project(name, key, **fields):
        response = client.post("/api/projects", json={"name": name, "key": key, **fields}, headers=headers)
        assert response.status_code == 201, response.json
        return response.json

    books = project("Books", "BKS")
    assert client.post(f"/api/projects/{books['id']}/members", json=body, headers=headers).status_code == 201
    ledger = project("Ledger", "LDG", visibility="private", team_id=team["id"])
    old = project("Archive", "ARC", status="archived", team_id=team["id"])
    project("Elsewhere", "ELS")
    return {"me": me, "other": other, "admin": admin, "books": books, "ledger": ledger, "old": old}


@pytest.fixture
def data_set(world):
    me, other = world["me"], world["other"]
    add_task(me, me, "due in 2 days", due_in_days=2, created_days_ago=1)
    add_task(other, me, "due in 5 days", status="in_progress", due_in_days=5, created_days_ago=2)
    add_task(other, me, "due in 10 days", due_in_days=10, created_days_ago=3)
    add_task(other, me, "late 1 day", status="in_progress", due_in_days=-1, created_days_ago=4)
    add_task(other, me, "late 3 days", due_in_days=-3, created_days_ago=5)
    add_task(other, me, "closed long ago", status="closed", due_in_days=-20, created_days_ago=6)
    add_task(me, other, "made for otto", created_days_ago=7)
    add_task(other, me, "trashed, due tomorrow", due_in_days=1, created_days_ago=0, trashed=True)
    add_task(other, other, "not mine", due_in_days=1, created_days_ago=0)
    books = world["books"]
    for status in ("closed", "closed", "cancelled", "open", "in_progress"):
        add_task(other, other, f"books {status}", status=status, project=books, created_days_ago=20)
    add_task(other, other, "books trashed", status="closed", project=books, created_days_ago=20, trashed=True)
    add_task(other, other, "old books", project=world["old"], created_days_ago=20)
    for number in range(7):
        db.session.add(
            Notification(
                user_id=me.id,
                type="task_assigned",
                title=f"note {number}",
                message="m",
                is_read=number < 2,
                created_at=NOW - timedelta(minutes=10 - number),
            )
        )
    db.session.add(Notification(user_id=other.id, type="task_assigned", title="not mine", message="m"))
    db.session.commit()


def dashboard(client, auth_headers, user):
    response = client.get(URL, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return response.json


def names(tasks):
    return [task["entity_name"] for task in tasks]


def test_my_dashboard(client, auth_headers, world, data_set):
    body = dashboard(client, auth_headers, world["me"])
    assert set(body) == {
        "recent_tasks",
        "my_open_by_status",
        "due_soon",
        "overdue",
        "projects",
        "unread_notifications",
        "latest_notifications",
    }
    assert names(body["recent_tasks"]) == [
        "due in 2 days",
        "due in 5 days",
        "due in 10 days",
        "late 1 day",
        "late 3 days",
    ]
    assert body["my_open_by_status"] == {"open": 3, "in_progress": 2}
    assert body["due_soon"]["count"] == 2
    assert names(body["due_soon"]["items"]) == ["due in 2 days", "due in 5 days"]
    assert body["overdue"]["count"] == 2
    assert names(body["overdue"]["items"]) == ["late 3 days", "late 1 day"]
    assert body["overdue"]["items"][0]["is_overdue"] is True
    assert body["projects"] == [
        {
            "id": world["books"]["id"],
            "key": "BKS",
            "name": "Books",
            "progress_percentage": 50.0,
            "open_tasks": 1,
            "in_progress_tasks": 1,
        },
        {
            "id": world["ledger"]["id"],
            "key": "LDG",
            "name": "Ledger",
            "progress_percentage": 0.0,
            "open_tasks": 0,
            "in_progress_tasks": 0,
        },
    ]
    assert body["unread_notifications"] == 5
    assert [note["title"] for note in body["latest_notifications"]] == [f"note {n}" for n in (6, 5, 4, 3, 2)]


def test_each_task_shown_is_what_the_task_answers(client, auth_headers, world, data_set):
    """The dashboard loads its tasks as the task list loads a page (rows, not ORM objects): same JSON as the task's
    own endpoint, key order included."""
    headers = auth_headers(world["me"])
    body = dashboard(client, auth_headers, world["me"])
    shown = body["recent_tasks"] + body["due_soon"]["items"] + body["overdue"]["items"]
    assert len(shown) == 9
    for item in shown:
        answer = client.get(f"/api/tasks/{item['id']}", headers=headers)
        assert list(item.items()) == list(answer.json.items())


def test_recent_tasks_include_those_i_created_for_others(client, auth_headers, world, data_set):
    task = add_task(world["me"], world["other"], "fresh for otto", created_days_ago=0)
    db.session.commit()
    body = dashboard(client, auth_headers, world["me"])
    assert body["recent_tasks"][0]["id"] == str(task.id)
    assert body["my_open_by_status"] == {"open": 3, "in_progress": 2}  # I do not hold it


def test_an_empty_dashboard(client, auth_headers, make_user):
    body = dashboard(client, auth_headers, make_user())
    assert body == {
        "recent_tasks": [],
        "my_open_by_status": {"open": 0, "in_progress": 0},
        "due_soon": {"count": 0, "items": []},
        "overdue": {"count": 0, "items": []},
        "projects": [],
        "unread_notifications": 0,
        "latest_notifications": [],
    }


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_managers_and_admins_get_their_own_dashboard_too(client, auth_headers, make_user, world, data_set, role):
    body = dashboard(client, auth_headers, make_user(role=role))
    assert body["recent_tasks"] == [] and body["projects"] == [] and body["due_soon"]["count"] == 0


def test_needs_a_token(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json["code"] == "token_missing"


def test_a_constant_number_of_statements(client, auth_headers, world):
    me, other = world["me"], world["other"]
    headers = auth_headers(me)

    def statements():
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = client.get(URL, headers=headers)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return response.json, len(seen)

    def add(count):
        for number in range(count):
            add_task(other, me, f"soon {number}", due_in_days=1 + number / 100)
            add_task(other, me, f"late {number}", due_in_days=-1 - number / 100)
            add_task(other, other, f"books {number}", project=world["books"])
        db.session.add(Notification(user_id=me.id, type="task_assigned", title="n", message="m"))
        db.session.commit()

    add(3)
    body, few = statements()
    assert body["due_soon"]["count"] == 3 and body["overdue"]["count"] == 3
    add(27)
    body, many = statements()
    assert body["due_soon"]["count"] == 30 and len(body["due_soon"]["items"]) == 10
    assert body["overdue"]["count"] == 30 and len(body["overdue"]["items"]) == 5
    assert len(body["recent_tasks"]) == 5
    assert many == few, f"3 tasks each: {few} statements, 30: {many}"


def test_at_most_ten_projects_by_name(client, auth_headers, world):
    me = world["me"]
    for number in range(12):
        project = Project(key=f"P{number:02d}", name=f"Project {number:02d}", created_by=world["admin"].id)
        db.session.add(project)
        db.session.flush()
        db.session.add(ProjectMember(project_id=project.id, user_id=me.id, role="viewer"))
    db.session.commit()
    body = dashboard(client, auth_headers, me)
    assert [project["name"] for project in body["projects"]] == ["Books", "Ledger"] + [
        f"Project {number:02d}" for number in range(8)
    ]
