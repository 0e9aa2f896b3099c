"""Who reads a task of a private project, on every read path, and what project roles allow on task writes.

People in `world`: `admin` and `boss` (global admin and manager; the boss created the project, so is its explicit
manager too), `pm`, `member`, `viewer` (members by role, explicit project manager, member and viewer), `teammate` (a
member of the project's team, hence a project member), `outsider` (in neither). Tasks, all in the private project:
`own` (created by `member`, held by `teammate`, with a comment, a file and the tag `ledger`), `other` (created by
the boss, unassigned) and `lent` (created by the boss, held by `outsider`: assigned to someone who may not read it).
"""

import io
import time

import pytest
import sqlalchemy as sa

from finstack.core import permissions
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tasks.models import Task
from finstack.users.models import User

READERS = ("admin", "boss", "pm", "member", "viewer", "teammate")
EVERYONE = (*READERS, "outsider")
QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive


@pytest.fixture
def world(client, auth_headers, make_user, admin, manager):
    people = {"admin": admin, "boss": manager}
    for name in ("pm", "member", "viewer", "teammate", "outsider"):
        people[name] = make_user()

    def call(method, url, name, expected=(200, 201), **kwargs):
        response = client.open(url, method=method, headers=auth_headers(people[name]), **kwargs)
        assert response.status_code in expected, response.data
        return response.json if response.data else None

    team = call("POST", "/api/teams", "admin", json={"name": "Close"})
    teammate = {"user_id": str(people["teammate"].id), "role": "member"}
    call("POST", f"/api/teams/{team['id']}/members", "admin", json=teammate)
    project = call(
        "POST",
        "/api/projects",
        "boss",
        json={"name": "Year-end", "key": "YE", "visibility": "private", "team_id": team["id"]},
    )
    for name in ("pm", "member", "viewer"):
        role = {"pm": "manager"}.get(name, name)
        body = {"user_id": str(people[name].id), "role": role}
        call("POST", f"/api/projects/{project['id']}/members", "boss", json=body)

    def task(creator, **fields):
        body = {"entity_name": "Acme", "task_type": "Audit", "task_time": "2020-01-01T09:00:00Z", **fields}
        return call("POST", "/api/tasks", creator, json={"project_id": project["id"], **body})["id"]

    tasks = {
        "own": task("member", contact_person_id=str(people["teammate"].id), tags=["ledger"]),
        "other": task("boss"),
        "lent": task("boss", contact_person_id=str(people["outsider"].id)),
    }
    comment = call("POST", f"/api/tasks/{tasks['own']}/comments", "member", json={"content": "Numbers?"})
    attachment = call(
        "POST",
        f"/api/tasks/{tasks['own']}/attachments",
        "member",
        data={"file": (io.BytesIO(b"totals"), "totals.txt")},
    )
    thread = call("GET", f"/api/chat/tasks/{tasks['own']}/conversation", "member")
    return {
        "people": people,
        "project": project,
        "tasks": tasks,
        "comment": comment,
        "attachment": attachment,
        "thread": thread,
        "call": call,
    }


def open_project(world):
    world["call"]("PUT", f"/api/projects/{world['project']['id']}", "boss", json={"visibility": "open"})


# --- One task's read paths: readers get it, an outsider gets 404 --------------------------------------------------

ONE_TASK_PATHS = {
    "get": ("GET", "/api/tasks/{own}", {}),
    "comments": ("GET", "/api/tasks/{own}/comments", {}),
    "comment_add": ("POST", "/api/tasks/{own}/comments", {"json": {"content": "Me too"}}),
    "comment_edit": ("PATCH", "/api/tasks/{own}/comments/{comment}", {"json": {"content": "Changed"}}),
    "attachments": ("GET", "/api/tasks/{own}/attachments", {}),
    "download": ("GET", "/api/tasks/{own}/attachments/{attachment}/download", {}),
    "upload": ("POST", "/api/tasks/{own}/attachments", {"data": lambda: {"file": (io.BytesIO(b"x"), "x.txt")}}),
    "chat_thread": ("GET", "/api/chat/tasks/{own}/conversation", {}),
    "chat_messages": ("GET", "/api/chat/conversations/{thread}/messages", {}),
    "chat_send": ("POST", "/api/chat/conversations/{thread}/messages", {"json": {"content": "Hello"}}),
}


def one_task_request(path):
    """`(method, url template, keywords)`, with a fresh upload each time (a stream is read once)."""
    method, template, kwargs = ONE_TASK_PATHS[path]
    return method, template, {key: value() if callable(value) else value for key, value in kwargs.items()}


def one_task_url(world, template):
    ids = {
        "own": world["tasks"]["own"],
        "comment": world["comment"]["id"],
        "attachment": world["attachment"]["id"],
        "thread": world["thread"]["id"],
    }
    return template.format(**ids)


@pytest.mark.parametrize("path", ONE_TASK_PATHS)
def test_an_outsider_gets_404_on_every_path_of_a_private_task(client, auth_headers, world, path):
    method, template, kwargs = one_task_request(path)
    response = client.open(
        one_task_url(world, template), method=method, headers=auth_headers(world["people"]["outsider"]), **kwargs
    )
    assert response.status_code == 404, response.json
    assert response.json["code"] == "not_found"


@pytest.mark.parametrize("reader", ("admin", "boss", "viewer", "teammate"))
@pytest.mark.parametrize("path", [path for path in ONE_TASK_PATHS if path != "comment_edit"])
def test_readers_get_every_path_of_a_private_task(client, auth_headers, world, path, reader):
    method, template, kwargs = one_task_request(path)
    response = client.open(
        one_task_url(world, template), method=method, headers=auth_headers(world["people"][reader]), **kwargs
    )
    assert response.status_code in (200, 201), response.json


@pytest.mark.parametrize("path", ["get", "comments", "download", "chat_messages"])
def test_an_open_project_is_read_by_everyone(client, auth_headers, world, path):
    open_project(world)
    method, template, kwargs = one_task_request(path)
    response = client.open(
        one_task_url(world, template), method=method, headers=auth_headers(world["people"]["outsider"]), **kwargs
    )
    assert response.status_code == 200, response.json


# --- Lists and counts --------------------------------------------------------------------------------------------


def listed_task_ids(world, name, **query):
    return {item["id"] for item in world["call"]("GET", "/api/tasks", name, query_string=query)["items"]}


@pytest.mark.parametrize("name", EVERYONE)
def test_task_list_and_its_filters_show_private_tasks_to_readers_only(world, name):
    expected = set(world["tasks"].values()) if name in READERS else set()
    project_id = world["project"]["id"]
    assert listed_task_ids(world, name) == expected
    assert listed_task_ids(world, name, project_id=project_id) == expected
    assert listed_task_ids(world, name, tag="ledger") == expected & {world["tasks"]["own"]}
    total = world["call"]("GET", "/api/tasks", name, query_string={"project_id": project_id})["pagination"]["total"]
    assert total == len(expected)


@pytest.mark.parametrize("name", ("outsider", "teammate"))
def test_tag_counts_cover_readable_tasks_only(world, name):
    tags = world["call"]("GET", "/api/tags", name)["items"]
    assert tags == ([{"tag": "ledger", "count": 1}] if name in READERS else [])


def test_an_open_project_is_listed_to_everyone(world):
    open_project(world)
    assert listed_task_ids(world, "outsider") == set(world["tasks"].values())


def test_the_outsider_holding_a_private_task_does_not_see_it_in_dashboard_or_report(world):
    """`lent` is held by the outsider: their own scope, but not readable by them."""
    outsider = world["people"]["outsider"]
    dashboard = world["call"]("GET", "/api/analytics/dashboard", "outsider")
    assert dashboard["summary"]["total_tasks"] == 0
    report = world["call"]("GET", "/api/reports/user-productivity", "outsider")["items"]
    assert [(row["user_id"], row["total_tasks_assigned"]) for row in report] == [(str(outsider.id), 0)]

    open_project(world)
    assert world["call"]("GET", "/api/analytics/dashboard", "outsider")["summary"]["total_tasks"] == 1
    report = world["call"]("GET", "/api/reports/user-productivity", "outsider")["items"]
    assert report[0]["total_tasks_assigned"] == 1


def test_a_team_member_sees_held_tasks_in_dashboard_and_report(world):
    dashboard = world["call"]("GET", "/api/analytics/dashboard", "teammate")
    assert dashboard["summary"]["total_tasks"] == 1
    assert world["call"]("GET", "/api/reports/user-productivity", "teammate")["items"][0]["total_tasks_assigned"] == 1


def test_managers_reports_count_every_task(world):
    report = world["call"]("GET", "/api/reports/user-productivity", "boss")["items"]
    held = {row["user_id"]: row["total_tasks_assigned"] for row in report}
    assert held[str(world["people"]["outsider"].id)] == 1
    assert held[str(world["people"]["teammate"].id)] == 1


# --- Notifications -----------------------------------------------------------------------------------------------


def notified(user):
    return {
        (row.type, str(row.task_id))
        for row in db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id))
    }


def test_notifications_about_a_private_task_go_to_its_readers_only(world):
    people, tasks = world["people"], world["tasks"]
    assert ("task_assigned", tasks["own"]) in notified(people["teammate"])
    assert notified(people["outsider"]) == set()  # `lent` was assigned to them: no notification
    body = {"content": f"@{people['outsider'].username} @{people['viewer'].username} look"}
    world["call"]("POST", f"/api/tasks/{tasks['lent']}/comments", "boss", json=body)
    world["call"]("PATCH", f"/api/tasks/{tasks['lent']}/status", "boss", json={"status": "in_progress"})
    assert notified(people["outsider"]) == set()
    assert ("mentioned", tasks["lent"]) in notified(people["viewer"])


def test_notifications_reach_the_holder_once_the_project_is_open(world):
    open_project(world)
    world["call"]("PATCH", f"/api/tasks/{world['tasks']['lent']}/status", "boss", json={"status": "in_progress"})
    assert notified(world["people"]["outsider"]) == {("task_status_changed", world["tasks"]["lent"])}


# --- Sockets: join_task and live task events ---------------------------------------------------------------------


def test_join_task_is_refused_to_an_outsider_and_granted_to_a_team_member(world, socket_client):
    task_id = world["tasks"]["own"]
    outsider_sock = socket_client(world["people"]["outsider"])
    ack = outsider_sock.call("join_task", {"task_id": task_id}, timeout=5)
    assert ack == {"error": "Task not found", "code": "not_found", "details": {}}
    assert socket_client(world["people"]["teammate"]).call("join_task", {"task_id": task_id}, timeout=5) == {
        "ok": True
    }


def test_live_task_events_skip_users_who_may_not_read_the_task(world, socket_client):
    people, tasks = world["people"], world["tasks"]
    outsider_sock = socket_client(people["outsider"])  # holds `lent`: its user room would get the events
    viewer_sock = socket_client(people["viewer"])
    assert viewer_sock.call("join_task", {"task_id": tasks["lent"]}, timeout=5) == {"ok": True}

    world["call"]("PUT", f"/api/tasks/{tasks['lent']}", "boss", json={"note": "Checked"})
    world["call"]("DELETE", f"/api/tasks/{tasks['lent']}", "boss", expected=(204,))
    assert viewer_sock.wait_for("task_updated")["note"] == "Checked"
    viewer_sock.wait_for("task_deleted")
    created = world["call"](
        "POST",
        "/api/tasks",
        "boss",
        json={
            "entity_name": "Beta",
            "task_type": "Call",
            "task_time": "2030-01-01T09:00:00Z",
            "project_id": world["project"]["id"],
            "contact_person_id": str(people["outsider"].id),
        },
    )
    time.sleep(QUIET)
    assert {event for event, _ in outsider_sock.received} & {"task_created", "task_updated", "task_deleted"} == set()

    open_project(world)
    world["call"]("PUT", f"/api/tasks/{created['id']}", "boss", json={"note": "Open now"})
    assert outsider_sock.wait_for("task_updated")["note"] == "Open now"


def test_a_socket_leaves_the_task_room_when_its_user_loses_access(app, world, socket_client):
    people, task_id = world["people"], world["tasks"]["other"]
    pm_sock, viewer_sock = socket_client(people["pm"]), socket_client(people["viewer"])
    for sock in (pm_sock, viewer_sock):
        assert sock.call("join_task", {"task_id": task_id}, timeout=5) == {"ok": True}
    url = f"/api/projects/{world['project']['id']}/members/{people['pm'].id}"
    world["call"]("DELETE", url, "boss", expected=(204,))
    time.sleep(3 * app.config["SOCKET_RECHECK_SECONDS"])  # the periodic re-check takes the socket out
    world["call"]("PUT", f"/api/tasks/{task_id}", "boss", json={"note": "After"})
    assert viewer_sock.wait_for("task_updated")["note"] == "After"
    time.sleep(QUIET)
    assert pm_sock.events("task_updated") == []


# --- Project roles on writes -------------------------------------------------------------------------------------

# What each person gets when changing `own` (member's, held by teammate) and `other` (boss's, unassigned).
EDIT = {
    "admin": {"own": 200, "other": 200},
    "boss": {"own": 200, "other": 200},
    "pm": {"own": 200, "other": 200},
    "member": {"own": 200, "other": 403},
    "teammate": {"own": 200, "other": 403},
    "viewer": {"own": 403, "other": 403},
    "outsider": {"own": 404, "other": 404},
}
DELETE = {
    "admin": {"own": 204, "other": 204},
    "boss": {"own": 204, "other": 204},
    "pm": {"own": 204, "other": 204},
    "member": {"own": 204, "other": 403},
    "teammate": {"own": 403, "other": 403},  # holds `own` but did not create it
    "viewer": {"own": 403, "other": 403},
    "outsider": {"own": 404, "other": 404},
}
WRITES = {
    "update": ("PUT", "/api/tasks/{id}", {"json": {"note": "Reviewed"}}, EDIT),
    "status": ("PATCH", "/api/tasks/{id}/status", {"json": {"status": "in_progress"}}, EDIT),
    "delete": ("DELETE", "/api/tasks/{id}", {}, DELETE),
}


@pytest.mark.parametrize("task", ("own", "other"))
@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("name", EVERYONE)
def test_project_roles_on_task_writes(client, auth_headers, world, name, write, task):
    method, template, kwargs, expected = WRITES[write]
    url = template.format(id=world["tasks"][task])
    response = client.open(url, method=method, headers=auth_headers(world["people"][name]), **kwargs)
    assert response.status_code == expected[name][task], response.json
    if response.status_code >= 400:
        assert response.json["code"] == {403: "forbidden", 404: "not_found"}[response.status_code]


@pytest.mark.parametrize("name", EVERYONE)
def test_bulk_status_classifies_by_project_role(world, name):
    tasks = world["tasks"]
    body = {"task_ids": [tasks["own"], tasks["other"]], "status": "in_progress"}
    result = world["call"]("POST", "/api/tasks/bulk-status", name, json=body)
    outcome = {
        task: next(key for key in ("updated", "forbidden", "not_found") if tasks[task] in result[key])
        for task in ("own", "other")
    }
    meaning = {200: "updated", 403: "forbidden", 404: "not_found"}
    assert outcome == {task: meaning[EDIT[name][task]] for task in ("own", "other")}


def test_a_viewer_cannot_edit_even_a_task_they_created(world):
    task_id = world["call"](
        "POST",
        "/api/tasks",
        "viewer",
        json={"entity_name": "Gamma", "task_type": "Call", "task_time": "2030-01-01T09:00:00Z"},
    )["id"]
    world["call"]("PUT", f"/api/tasks/{task_id}", "viewer", json={"note": "Mine"})
    world["call"]("PUT", f"/api/tasks/{task_id}", "pm", json={"project_id": world["project"]["id"]}, expected=(403,))
    world["call"]("PUT", f"/api/tasks/{task_id}", "boss", json={"project_id": world["project"]["id"]})
    world["call"]("PUT", f"/api/tasks/{task_id}", "viewer", json={"note": "Still mine?"}, expected=(403,))
    world["call"]("DELETE", f"/api/tasks/{task_id}", "viewer", expected=(403,))
    world["call"]("PUT", f"/api/tasks/{task_id}", "pm", json={"note": "Project's now"})


def test_an_open_project_outsider_reads_but_does_not_edit_a_task_they_hold(world):
    open_project(world)
    world["call"]("GET", f"/api/tasks/{world['tasks']['lent']}", "outsider")
    world["call"]("PUT", f"/api/tasks/{world['tasks']['lent']}", "outsider", json={"note": "x"}, expected=(403,))


# --- The rule in Python and in SQL agree ---------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ("private", "open"))
def test_python_and_sql_rules_agree(world, visibility):
    if visibility == "open":
        open_project(world)
    body = {"entity_name": "Loose", "task_type": "Call", "task_time": "2030-01-01T09:00:00Z"}
    world["call"]("POST", "/api/tasks", "member", json=body)  # no project
    tasks = list(db.session.scalars(sa.select(Task)))
    users = list(world["people"].values())
    for user in users:
        for clause, check in (
            (permissions.readable_tasks_clause, permissions.can_read_task),
            (permissions.editable_tasks_clause, permissions.can_edit_task),
            (permissions.deletable_tasks_clause, permissions.can_delete_task),
        ):
            in_sql = set(db.session.scalars(sa.select(Task.id).where(clause(user, Task))))
            assert in_sql == {task.id for task in tasks if check(user, task)}, (user, check)
    for task in tasks:
        readers = set(db.session.scalars(sa.select(User.id).where(permissions.task_readers_clause(User, task))))
        assert readers & {user.id for user in users} == {
            user.id for user in users if permissions.can_read_task(user, task)
        }
