"""Projects: creation, visibility of the list and of one project, changes, deletion, members (explicit and through
the project's team), progress, and tasks put in projects.

People in `world` (tests/worlds.py, shared with test_board): `admin`, `manager`, `lead`, `staff`, `member`,
`viewer`, `outsider`, one per way of relating to the private project.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from finstack.audit.models import AuditLog
from finstack.comments.models import Comment
from finstack.extensions import db
from finstack.projects.models import Project, ProjectMember
from finstack.tasks.models import Task
from finstack.tasks.search import include_name
from tests import worlds

world = worlds.world  # the fixture
MISSING = "00000000-0000-0000-0000-000000000000"


def assert_error(response, status, code):
    assert response.status_code == status, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert response.json["code"] == code


def as_(auth_headers, world, name):
    return auth_headers(world["people"][name])


def new_task(client, headers, **fields):
    body = {"entity_name": "Acme", "task_type": "Audit", "task_time": "2030-01-01T09:00:00Z", **fields}
    return client.post("/api/tasks", json=body, headers=headers)


# --- Create ------------------------------------------------------------------------------------------------------


def test_create_answers_every_field(client, auth_headers, manager):
    response = client.post(
        "/api/projects",
        json={
            "name": " Finance ",
            "key": "fin",
            "description": "Books",
            "start_date": "2030-01-01",
            "due_date": "2030-03-31",
        },
        headers=auth_headers(manager),
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {
        "id",
        "key",
        "name",
        "description",
        "status",
        "visibility",
        "team_id",
        "start_date",
        "due_date",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert (body["key"], body["name"], body["status"], body["visibility"]) == ("FIN", "Finance", "active", "open")
    assert (body["start_date"], body["due_date"], body["team_id"]) == ("2030-01-01", "2030-03-31", None)
    membership = db.session.get(ProjectMember, (uuid.UUID(body["id"]), manager.id))
    assert membership.role == "manager"


@pytest.mark.parametrize("role, status", [("admin", 201), ("manager", 201), ("member", 403)])
def test_who_creates_projects(client, auth_headers, make_user, role, status):
    response = client.post("/api/projects", json={"name": "P", "key": "P1"}, headers=auth_headers(make_user(role=role)))
    assert response.status_code == status, response.json


def test_key_is_unique_whatever_its_case(client, auth_headers, manager):
    headers = auth_headers(manager)
    assert client.post("/api/projects", json={"name": "A", "key": "FIN"}, headers=headers).status_code == 201
    duplicate = client.post("/api/projects", json={"name": "B", "key": "fin"}, headers=headers)
    assert_error(duplicate, 409, "conflict")
    assert "key" in duplicate.json["details"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A", "key": "F"}, "key"),
        ({"name": "A", "key": "FINANCE2030"}, "key"),
        ({"name": "A", "key": "FI-N"}, "key"),
        ({"name": "A", "key": "FIN", "start_date": "2030-02-01", "due_date": "2030-01-31"}, "due_date"),
        ({"name": "A", "key": "FIN", "status": "done"}, "status"),
        ({"name": "A", "key": "FIN", "visibility": "secret"}, "visibility"),
        ({"name": "A", "key": "FIN", "team_id": MISSING}, "team_id"),
        ({"name": "A", "key": "FIN", "owner": "me"}, "owner"),
        ({"key": "FIN"}, "name"),
    ],
)
def test_create_validation(client, auth_headers, manager, body, field):
    response = client.post("/api/projects", json=body, headers=auth_headers(manager))
    assert_error(response, 400, "validation_failed")
    assert field in response.json["details"]


# --- Read ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "lead", "staff", "member", "viewer", "outsider"])
def test_list_shows_open_projects_and_private_ones_i_belong_to(client, auth_headers, world, name):
    open_project = client.post(
        "/api/projects", json={"name": "Open house", "key": "OPEN"}, headers=as_(auth_headers, world, "admin")
    ).json
    listed = client.get("/api/projects", headers=as_(auth_headers, world, name)).json
    ids = [item["id"] for item in listed["items"]]
    if name == "outsider":
        assert ids == [open_project["id"]]
    else:
        assert ids == [open_project["id"], world["project"]["id"]]
    assert listed["pagination"]["total"] == len(ids)


def test_global_managers_see_private_projects_they_are_not_in(client, auth_headers, world, make_user):
    other_manager = make_user(role="manager")
    listed = client.get("/api/projects", headers=auth_headers(other_manager)).json
    assert [item["key"] for item in listed["items"]] == ["YEC"]
    assert client.get(world["url"], headers=auth_headers(other_manager)).status_code == 200


def test_list_filters(client, auth_headers, world):
    headers = as_(auth_headers, world, "admin")
    client.post("/api/projects", json={"name": "Payroll", "key": "PAY", "status": "archived"}, headers=headers)
    keys = lambda query: [p["key"] for p in client.get(f"/api/projects?{query}", headers=headers).json["items"]]  # noqa: E731
    assert keys("status=archived") == ["PAY"]
    assert keys("visibility=private") == ["YEC"]
    assert keys(f"team_id={world['team']['id']}") == ["YEC"]
    assert keys("search=pay") == ["PAY"]
    assert keys("search=yec") == ["YEC"]
    assert_error(client.get("/api/projects?colour=red", headers=headers), 400, "validation_failed")


@pytest.mark.parametrize("name", ["admin", "manager", "lead", "staff", "member", "viewer"])
def test_members_read_a_private_project(client, auth_headers, world, name):
    response = client.get(world["url"], headers=as_(auth_headers, world, name))
    assert response.status_code == 200, response.json
    assert response.json["key"] == "YEC"


def test_outsider_of_a_private_project_gets_404_everywhere(client, auth_headers, world):
    headers = as_(auth_headers, world, "outsider")
    for path in ("", "/members", "/progress"):
        assert_error(client.get(world["url"] + path, headers=headers), 404, "not_found")
    assert_error(client.put(world["url"], json={"name": "x"}, headers=headers), 404, "not_found")
    assert_error(client.delete(world["url"], headers=headers), 404, "not_found")
    assert_error(new_task(client, headers, project_id=world["project"]["id"]), 400, "validation_failed")


def test_an_open_project_is_read_by_anyone(client, auth_headers, world):
    client.put(world["url"], json={"visibility": "open"}, headers=as_(auth_headers, world, "manager"))
    assert client.get(world["url"], headers=as_(auth_headers, world, "outsider")).status_code == 200


# --- Update and delete --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, status",
    [
        ("admin", 200),
        ("manager", 200),
        ("lead", 200),
        ("staff", 403),
        ("member", 403),
        ("viewer", 403),
    ],
)
def test_who_changes_a_project(client, auth_headers, world, name, status):
    response = client.put(
        world["url"], json={"name": "Close", "status": "archived"}, headers=as_(auth_headers, world, name)
    )
    assert response.status_code == status, response.json
    stored = db.session.get(Project, uuid.UUID(world["project"]["id"]))
    assert (stored.name, stored.status) == (("Close", "archived") if status == 200 else ("Year-end close", "active"))


def test_update_checks_dates_against_stored_ones_and_keys(client, auth_headers, world):
    headers = as_(auth_headers, world, "manager")
    assert client.put(world["url"], json={"start_date": "2030-05-01"}, headers=headers).status_code == 200
    assert_error(client.put(world["url"], json={"due_date": "2030-04-30"}, headers=headers), 400, "validation_failed")
    client.post("/api/projects", json={"name": "Other", "key": "OTH"}, headers=headers)
    assert_error(client.put(world["url"], json={"key": "oth"}, headers=headers), 409, "conflict")
    assert client.put(world["url"], json={"key": "yec2"}, headers=headers).json["key"] == "YEC2"
    assert_error(client.put(world["url"], json={}, headers=headers), 400, "validation_failed")
    assert_error(client.put(world["url"], json={"team_id": MISSING}, headers=headers), 400, "validation_failed")


@pytest.mark.parametrize("name, status", [("admin", 204), ("lead", 204), ("staff", 403), ("viewer", 403)])
def test_who_deletes_a_project(client, auth_headers, world, name, status):
    response = client.delete(world["url"], headers=as_(auth_headers, world, name))
    assert response.status_code == status
    assert (db.session.get(Project, uuid.UUID(world["project"]["id"])) is None) == (status == 204)


def test_delete_refused_while_holding_tasks_unless_cascade(client, auth_headers, world):
    headers = as_(auth_headers, world, "manager")
    task = new_task(client, headers, project_id=world["project"]["id"]).json
    already_trashed = new_task(client, headers, project_id=world["project"]["id"]).json
    outside = new_task(client, headers).json
    client.post(f"/api/tasks/{task['id']}/comments", json={"content": "note"}, headers=headers)
    assert client.delete(f"/api/tasks/{already_trashed['id']}", headers=headers).status_code == 204
    refused = client.delete(world["url"], headers=headers)
    assert_error(refused, 409, "conflict")
    assert refused.json["details"] == {"tasks": 1}  # the trash does not count
    assert client.delete(f"{world['url']}?cascade=true", headers=headers).status_code == 204
    assert db.session.get(Project, uuid.UUID(world["project"]["id"])) is None
    rows = db.session.execute(sa.select(Task.id, Task.project_id, Task.deleted_at.is_not(None))).all()
    assert sorted(rows) == sorted(
        [
            (uuid.UUID(outside["id"]), None, False),
            (uuid.UUID(task["id"]), None, True),  # trashed with the project, kept in the trash in no project
            (uuid.UUID(already_trashed["id"]), None, True),
        ]
    )
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 1  # restored with the task
    actions = set(db.session.scalars(sa.select(AuditLog.action)))
    assert {"project.delete", "task.trash_with_project"} <= actions


def test_deleting_the_team_leaves_the_project_without_it(client, auth_headers, world):
    headers = as_(auth_headers, world, "admin")
    assert client.delete(f"/api/teams/{world['team']['id']}", headers=headers).status_code == 204
    assert client.get(world["url"], headers=headers).json["team_id"] is None
    assert_error(client.get(world["url"], headers=as_(auth_headers, world, "staff")), 404, "not_found")


# --- Members --------------------------------------------------------------------------------------------------------


def members_of(client, world, headers, query=""):
    body = client.get(f"{world['url']}/members{query}", headers=headers).json
    return body, {item["user_id"]: (item["role"], item["source"]) for item in body["items"]}


def test_members_are_explicit_ones_plus_the_teams(client, auth_headers, world):
    people = world["people"]
    body, roles = members_of(client, world, as_(auth_headers, world, "viewer"))
    assert roles == {
        str(people["manager"].id): ("manager", "project"),
        str(people["member"].id): ("member", "project"),
        str(people["viewer"].id): ("viewer", "project"),
        str(people["lead"].id): ("manager", "team"),
        str(people["staff"].id): ("member", "team"),
        str(people["admin"].id): ("manager", "team"),  # the team's creator
    }
    assert body["pagination"]["total"] == 6
    assert set(body["items"][0]) == {"user_id", "user", "role", "source"}
    one_page, _ = members_of(client, world, as_(auth_headers, world, "viewer"), "?per_page=2&page=3")
    assert len(one_page["items"]) == 2


def test_members_search(client, auth_headers, world):
    staff = world["people"]["staff"]
    _, roles = members_of(client, world, as_(auth_headers, world, "member"), f"?search={staff.username}")
    assert roles == {str(staff.id): ("member", "team")}


def test_an_explicit_membership_wins_over_the_teams(client, auth_headers, world):
    people, headers = world["people"], as_(auth_headers, world, "manager")
    url = f"{world['url']}/members"
    added = client.post(url, json={"user_id": str(people["lead"].id), "role": "viewer"}, headers=headers)
    assert added.status_code == 201, added.json
    assert (added.json["role"], added.json["source"]) == ("viewer", "project")
    _, roles = members_of(client, world, headers)
    assert roles[str(people["lead"].id)] == ("viewer", "project")
    assert len(roles) == 6
    # Now a viewer, the team manager may no longer change the project.
    assert_error(
        client.put(world["url"], json={"name": "x"}, headers=as_(auth_headers, world, "lead")), 403, "forbidden"
    )
    # Removing the explicit membership gives the team's role back.
    assert client.delete(f"{url}/{people['lead'].id}", headers=headers).status_code == 204
    _, roles = members_of(client, world, headers)
    assert roles[str(people["lead"].id)] == ("manager", "team")


def test_the_task_list_is_each_readers_own_and_follows_membership(client, auth_headers, world):
    """The same list asked by readers who see different tasks (its statements are built once per reader), before
    and after one of them joins the private project."""
    headers = as_(auth_headers, world, "manager")
    task = new_task(client, headers, project_id=world["project"]["id"])
    assert task.status_code == 201, task.json

    def listed(name):
        response = client.get("/api/tasks?per_page=100", headers=as_(auth_headers, world, name))
        assert response.status_code == 200, response.json
        return task.json["id"] in {item["id"] for item in response.json["items"]}

    assert listed("manager") and not listed("outsider")
    outsider = {"user_id": str(world["people"]["outsider"].id), "role": "viewer"}
    assert client.post(f"{world['url']}/members", json=outsider, headers=headers).status_code == 201
    assert listed("outsider") and listed("manager")


@pytest.mark.parametrize(
    "name, status", [("admin", 201), ("manager", 201), ("lead", 201), ("staff", 403), ("member", 403), ("viewer", 403)]
)
def test_who_adds_members(client, auth_headers, world, name, status):
    response = client.post(
        f"{world['url']}/members",
        json={"user_id": str(world["people"]["outsider"].id), "role": "viewer"},
        headers=as_(auth_headers, world, name),
    )
    assert response.status_code == status, response.json


def test_member_changes_and_refusals(client, auth_headers, world, make_user):
    people, headers = world["people"], as_(auth_headers, world, "lead")
    url = f"{world['url']}/members"
    assert_error(client.post(url, json={"user_id": str(people["member"].id)}, headers=headers), 409, "conflict")
    assert_error(client.post(url, json={"user_id": MISSING}, headers=headers), 400, "validation_failed")
    inactive = make_user()
    inactive.is_active = False
    db.session.commit()
    assert_error(client.post(url, json={"user_id": str(inactive.id)}, headers=headers), 400, "validation_failed")
    bad = client.post(url, json={"user_id": str(people["outsider"].id), "role": "owner"}, headers=headers)
    assert_error(bad, 400, "validation_failed")
    changed = client.patch(f"{url}/{people['viewer'].id}", json={"role": "member"}, headers=headers)
    assert changed.status_code == 200 and changed.json["role"] == "member"
    # A team-derived membership is changed in the team, not here.
    assert_error(client.patch(f"{url}/{people['staff'].id}", json={"role": "viewer"}, headers=headers), 409, "conflict")
    assert_error(client.delete(f"{url}/{people['staff'].id}", headers=headers), 409, "conflict")
    assert_error(
        client.patch(f"{url}/{people['outsider'].id}", json={"role": "viewer"}, headers=headers), 404, "not_found"
    )
    assert_error(client.delete(f"{url}/{people['outsider'].id}", headers=headers), 404, "not_found")
    member_headers = as_(auth_headers, world, "member")
    assert_error(
        client.patch(f"{url}/{people['viewer'].id}", json={"role": "manager"}, headers=member_headers), 403, "forbidden"
    )
    assert_error(client.delete(f"{url}/{people['viewer'].id}", headers=member_headers), 403, "forbidden")
    assert client.delete(f"{url}/{people['viewer'].id}", headers=headers).status_code == 204
    assert_error(client.get(world["url"], headers=as_(auth_headers, world, "viewer")), 404, "not_found")


def test_project_writes_are_audited(client, auth_headers, world):
    headers = as_(auth_headers, world, "manager")
    url = f"{world['url']}/members/{world['people']['viewer'].id}"
    client.put(world["url"], json={"description": "Close the books"}, headers=headers)
    client.patch(url, json={"role": "member"}, headers=headers)
    client.delete(url, headers=headers)
    client.delete(world["url"], headers=headers)
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_type == "project")).all()
    assert sorted(actions) == sorted(
        [
            "project.create",
            "project.member_add",
            "project.member_add",
            "project.update",
            "project.member_update",
            "project.member_remove",
            "project.delete",
        ]
    )


# --- Progress -------------------------------------------------------------------------------------------------------


def test_progress_counts_in_one_aggregate(client, auth_headers, world):
    headers = as_(auth_headers, world, "member")
    assert client.get(f"{world['url']}/progress", headers=headers).json == {
        "total_tasks": 0,
        "open_tasks": 0,
        "in_progress_tasks": 0,
        "completed_tasks": 0,
        "cancelled_tasks": 0,
        "overdue_tasks": 0,
        "progress_percentage": 0.0,
    }
    project_id = world["project"]["id"]
    for status, when in (
        ("open", "2020-01-01T00:00:00Z"),
        ("open", "2099-01-01T00:00:00Z"),
        ("in_progress", "2020-01-01T00:00:00Z"),
        ("closed", "2020-01-01T00:00:00Z"),
        ("cancelled", "2020-01-01T00:00:00Z"),
    ):
        response = new_task(client, headers, project_id=project_id, status=status, task_time=when)
        assert response.status_code == 201, response.json
    new_task(client, headers, status="closed")  # in no project: not counted
    progress = client.get(f"{world['url']}/progress", headers=as_(auth_headers, world, "viewer")).json
    assert progress == {
        "total_tasks": 5,
        "open_tasks": 2,
        "in_progress_tasks": 1,
        "completed_tasks": 1,
        "cancelled_tasks": 1,
        "overdue_tasks": 2,
        "progress_percentage": 25.0,
    }


def test_progress_overdue_splits_at_now_within_today(client, auth_headers, world):
    """A project's overdue: its active tasks of the days before today (maintained) + those due today before now."""
    headers = as_(auth_headers, world, "admin")
    project_id = world["project"]["id"]
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday, earlier_today = today - timedelta(microseconds=1), today + (now - today) / 2
    later_today, tomorrow = now + (today + timedelta(days=1) - now) / 2, today + timedelta(days=1)
    ids = {}
    for when in (yesterday, today, earlier_today, later_today, tomorrow):
        for status in ("open", "in_progress", "closed"):
            response = new_task(client, headers, project_id=project_id, status=status, task_time=when.isoformat())
            assert response.status_code == 201, response.json
            ids[when, status] = response.json["id"]
    new_task(client, headers, task_time=yesterday.isoformat())  # in no project: not counted
    assert client.delete(f"/api/tasks/{ids[yesterday, 'open']}", headers=headers).status_code == 204
    assert client.delete(f"/api/tasks/{ids[earlier_today, 'open']}", headers=headers).status_code == 204
    progress = client.get(f"{world['url']}/progress", headers=headers).json
    assert (progress["total_tasks"], progress["overdue_tasks"]) == (13, 4)

    response = client.put(
        f"/api/tasks/{ids[tomorrow, 'open']}", json={"task_time": earlier_today.isoformat()}, headers=headers
    )
    assert response.status_code == 200, response.json
    response = client.patch(f"/api/tasks/{ids[today, 'open']}/status", json={"status": "closed"}, headers=headers)
    assert response.status_code == 200, response.json
    assert client.get(f"{world['url']}/progress", headers=headers).json["overdue_tasks"] == 4


# --- Tasks in projects ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, status",
    [
        ("admin", 201),
        ("manager", 201),
        ("lead", 201),
        ("staff", 201),
        ("member", 201),
        ("viewer", 403),
        ("outsider", 400),
    ],
)
def test_who_puts_tasks_in_a_project(client, auth_headers, world, name, status):
    response = new_task(client, as_(auth_headers, world, name), project_id=world["project"]["id"])
    assert response.status_code == status, response.json
    if status == 201:
        assert response.json["project_id"] == world["project"]["id"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Task)) == (1 if status == 201 else 0)


def test_global_manager_outside_the_project_may_add_tasks(client, auth_headers, world, make_user):
    response = new_task(client, auth_headers(make_user(role="manager")), project_id=world["project"]["id"])
    assert response.status_code == 201, response.json


def test_task_project_must_exist_and_be_active(client, auth_headers, world):
    headers = as_(auth_headers, world, "member")
    assert_error(new_task(client, headers, project_id=MISSING), 400, "validation_failed")
    client.put(world["url"], json={"status": "archived"}, headers=as_(auth_headers, world, "manager"))
    refused = new_task(client, headers, project_id=world["project"]["id"])
    assert_error(refused, 400, "validation_failed")
    assert "project_id" in refused.json["details"]


def test_moving_a_task_into_a_project_checks_membership(client, auth_headers, world):
    viewer_headers = as_(auth_headers, world, "viewer")
    task = new_task(client, viewer_headers).json
    assert task["project_id"] is None
    assert_error(
        client.put(f"/api/tasks/{task['id']}", json={"project_id": world["project"]["id"]}, headers=viewer_headers),
        403,
        "forbidden",
    )
    member_headers = as_(auth_headers, world, "member")
    own = new_task(client, member_headers).json
    moved = client.put(f"/api/tasks/{own['id']}", json={"project_id": world["project"]["id"]}, headers=member_headers)
    assert moved.status_code == 200 and moved.json["project_id"] == world["project"]["id"]
    out = client.put(f"/api/tasks/{own['id']}", json={"project_id": None}, headers=member_headers)
    assert out.status_code == 200 and out.json["project_id"] is None


def test_task_list_filters_by_project_team_and_no_project(client, auth_headers, world):
    headers = as_(auth_headers, world, "admin")
    other = client.post("/api/projects", json={"name": "Other", "key": "OTH"}, headers=headers).json
    in_project = new_task(client, headers, project_id=world["project"]["id"]).json["id"]
    in_other = new_task(client, headers, project_id=other["id"]).json["id"]
    loose = new_task(client, headers).json["id"]

    def ids(query):
        response = client.get(f"/api/tasks?{query}", headers=headers)
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]}

    assert ids("") == {in_project, in_other, loose}
    assert ids(f"project_id={world['project']['id']}") == {in_project}
    assert ids(f"project_id={other['id']}") == {in_other}
    assert ids(f"team_id={world['team']['id']}") == {in_project}
    assert ids("no_project=true") == {loose}
    assert ids("no_project=false") == {in_project, in_other}
    assert ids(f"project_id={MISSING}") == set()
    combined = client.get(f"/api/tasks?no_project=true&project_id={other['id']}", headers=headers)
    assert_error(combined, 400, "validation_failed")


# --- Migration ------------------------------------------------------------------------------------------------------


def test_migration_goes_down_one_step_and_up_again_keeping_tasks(app, client, auth_headers, world):
    """On the session's database (SQLite or PostgreSQL): undoing 0006 drops the project tables and tasks.project_id
    but keeps the tasks (SQLite rebuilds `tasks`); upgrading again restores the schema the models describe."""
    headers = as_(auth_headers, world, "member")
    in_project = new_task(client, headers, project_id=world["project"]["id"]).json["id"]
    loose = new_task(client, headers).json["id"]
    db.session.remove()
    downgrade(revision="0005")  # below 0006, whatever migrations follow it
    inspector = sa.inspect(db.engine)
    assert not {"teams", "team_members", "projects", "project_members"} & set(inspector.get_table_names())
    assert "project_id" not in {column["name"] for column in inspector.get_columns("tasks")}
    with db.engine.connect() as connection:
        kept = {str(uuid.UUID(str(value))) for value in connection.execute(sa.text("SELECT id FROM tasks")).scalars()}
    assert kept == {in_project, loose}
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        assert compare_metadata(context, db.metadata) == []
    assert db.session.get(Task, uuid.UUID(loose)).project_id is None
