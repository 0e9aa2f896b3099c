"""GET /api/analytics/dashboard: exact shape, exact counts on a known data set, ordering, limit and scope."""

from datetime import UTC, datetime, timedelta

import pytest

from finstack.extensions import db
from finstack.tasks.models import Task
from finstack.users import service as users

URL = "/api/analytics/dashboard"
SUMMARY_KEYS = {"total_tasks", "open_tasks", "in_progress_tasks", "closed_tasks", "cancelled_tasks", "overdue_tasks"}


def summary(total=0, open_=0, in_progress=0, closed=0, cancelled=0, overdue=0):
    return {
        "total_tasks": total,
        "open_tasks": open_,
        "in_progress_tasks": in_progress,
        "closed_tasks": closed,
        "cancelled_tasks": cancelled,
        "overdue_tasks": overdue,
    }


def insert_task(creator, assignee=None, task_type="Call", status="open", task_time=None):
    task = Task(
        entity_name="Acme",
        task_type=task_type,
        task_time=task_time or datetime.now(UTC) + timedelta(days=1),
        status=status,
        created_by=creator.id,
        contact_person_id=assignee.id if assignee else None,
    )
    db.session.add(task)
    db.session.commit()
    return str(task.id)


def dashboard(client, headers, **query):
    response = client.get(URL, query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def person(user, count):
    return {"user": user.full_name, "user_id": str(user.id), "count": count}


@pytest.fixture
def team(make_user, admin, manager):
    return {
        "admin": admin,
        "manager": manager,
        "alice": make_user(full_name="Alice Archer"),
        "bob": make_user(full_name="Bob Baker"),
        "carol": make_user(full_name="Carol Cook"),
        "dave": make_user(full_name="Dave Dunn"),
    }


@pytest.fixture
def data_set(team):
    """Nine tasks. Overdue means open or in progress with task_time already past.

    | # | creator | assignee | type    | status      | task_time |
    |---|---------|----------|---------|-------------|-----------|
    | 1 | alice   | alice    | Call    | open        | past      |
    | 2 | alice   | bob      | Call    | in_progress | past      |
    | 3 | alice   | -        | Email   | closed      | past      |
    | 4 | bob     | bob      | Call    | cancelled   | past      |
    | 5 | bob     | carol    | Meeting | open        | future    |
    | 6 | admin   | bob      | Email   | open        | future    |
    | 7 | manager | carol    | Call    | closed      | future    |
    | 8 | admin   | -        | Visit   | in_progress | past      |
    | 9 | manager | bob      | Meeting | open        | past      |
    """
    past = datetime.now(UTC) - timedelta(minutes=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    t = team
    rows = [
        (t["alice"], t["alice"], "Call", "open", past),
        (t["alice"], t["bob"], "Call", "in_progress", past),
        (t["alice"], None, "Email", "closed", past),
        (t["bob"], t["bob"], "Call", "cancelled", past),
        (t["bob"], t["carol"], "Meeting", "open", future),
        (t["admin"], t["bob"], "Email", "open", future),
        (t["manager"], t["carol"], "Call", "closed", future),
        (t["admin"], None, "Visit", "in_progress", past),
        (t["manager"], t["bob"], "Meeting", "open", past),
    ]
    return [insert_task(*row) for row in rows]


@pytest.mark.parametrize("viewer", ["admin", "manager"])
def test_managers_and_admins_see_everything(client, auth_headers, team, data_set, viewer):
    body = dashboard(client, auth_headers(team[viewer]))
    assert body == {
        "summary": summary(total=9, open_=4, in_progress=2, closed=2, cancelled=1, overdue=4),
        "task_types": [
            {"type": "Call", "count": 4},
            {"type": "Email", "count": 2},
            {"type": "Meeting", "count": 2},
            {"type": "Visit", "count": 1},
        ],
        "user_tasks": [person(team["bob"], 4), person(team["carol"], 2), person(team["alice"], 1)],
        "scope": "all",
    }


def test_member_who_created_and_holds_tasks(client, auth_headers, team, data_set):
    """Alice created 1-3 and holds 1."""
    assert dashboard(client, auth_headers(team["alice"])) == {
        "summary": summary(total=3, open_=1, in_progress=1, closed=1, overdue=2),
        "task_types": [{"type": "Call", "count": 2}, {"type": "Email", "count": 1}],
        "user_tasks": [person(team["alice"], 1), person(team["bob"], 1)],
        "scope": "own",
    }


def test_member_sees_tasks_others_assigned_to_them(client, auth_headers, team, data_set):
    """Bob created 4 and 5 and holds 2, 4, 6 and 9 (made by alice, admin and the manager)."""
    assert dashboard(client, auth_headers(team["bob"])) == {
        "summary": summary(total=5, open_=3, in_progress=1, cancelled=1, overdue=2),
        "task_types": [{"type": "Call", "count": 2}, {"type": "Meeting", "count": 2}, {"type": "Email", "count": 1}],
        "user_tasks": [person(team["bob"], 4), person(team["carol"], 1)],
        "scope": "own",
    }


def test_member_who_only_holds_tasks(client, auth_headers, team, data_set):
    """Carol holds 5 (open, future) and 7 (closed)."""
    assert dashboard(client, auth_headers(team["carol"])) == {
        "summary": summary(total=2, open_=1, closed=1),
        "task_types": [{"type": "Call", "count": 1}, {"type": "Meeting", "count": 1}],
        "user_tasks": [person(team["carol"], 2)],
        "scope": "own",
    }


def test_member_with_no_tasks(client, auth_headers, team, data_set):
    assert dashboard(client, auth_headers(team["dave"])) == {
        "summary": summary(),
        "task_types": [],
        "user_tasks": [],
        "scope": "own",
    }


def test_empty_database(client, auth_headers, admin):
    assert dashboard(client, auth_headers(admin)) == {
        "summary": summary(),
        "task_types": [],
        "user_tasks": [],
        "scope": "all",
    }


def test_shape(client, auth_headers, team, data_set):
    body = dashboard(client, auth_headers(team["manager"]))
    assert set(body) == {"summary", "task_types", "user_tasks", "scope"}
    assert set(body["summary"]) == SUMMARY_KEYS
    assert all(isinstance(value, int) for value in body["summary"].values())
    assert all(set(entry) == {"type", "count"} for entry in body["task_types"])
    assert all(set(entry) == {"user", "user_id", "count"} for entry in body["user_tasks"])


@pytest.mark.parametrize(
    ("limit", "types", "holders"),
    [
        (1, ["Call"], ["bob"]),
        (2, ["Call", "Email"], ["bob", "carol"]),
        (3, ["Call", "Email", "Meeting"], ["bob", "carol", "alice"]),
        (100, ["Call", "Email", "Meeting", "Visit"], ["bob", "carol", "alice"]),
    ],
)
def test_limit(client, auth_headers, team, data_set, limit, types, holders):
    body = dashboard(client, auth_headers(team["admin"]), limit=limit)
    assert [entry["type"] for entry in body["task_types"]] == types
    assert [entry["user_id"] for entry in body["user_tasks"]] == [str(team[name].id) for name in holders]
    assert body["summary"]["total_tasks"] == 9, "the limit shortens the lists, never the summary"


def test_default_limit_is_ten(client, auth_headers, admin, make_user):
    holders = [make_user(full_name=f"Holder {number:02d}") for number in range(12)]
    db.session.add_all(
        Task(
            entity_name="Acme",
            task_type=f"Type {number:02d}",
            task_time=datetime(2030, 1, 1, tzinfo=UTC),
            created_by=admin.id,
            contact_person_id=holder.id,
        )
        for number, holder in enumerate(holders)
        for _ in range(number + 1)
    )
    db.session.commit()
    body = dashboard(client, auth_headers(admin))
    assert [entry["type"] for entry in body["task_types"]] == [f"Type {number:02d}" for number in range(11, 1, -1)]
    assert [entry["count"] for entry in body["task_types"]] == list(range(12, 2, -1))
    assert [entry["user"] for entry in body["user_tasks"]] == [f"Holder {number:02d}" for number in range(11, 1, -1)]
    assert body["summary"]["total_tasks"] == sum(range(1, 13))


def test_ties_are_ordered_by_name(client, auth_headers, admin, make_user):
    zed, amy = make_user(full_name="Zed Zimmer"), make_user(full_name="Amy Adams")
    for task_type in ("Zeta", "Alpha"):
        insert_task(admin, zed, task_type=task_type)
        insert_task(admin, amy, task_type=task_type)
    body = dashboard(client, auth_headers(admin))
    assert body["task_types"] == [{"type": "Alpha", "count": 2}, {"type": "Zeta", "count": 2}]
    assert body["user_tasks"] == [person(amy, 2), person(zed, 2)]


@pytest.mark.parametrize("value", ["0", "101", "-1", "ten", "1.5", ""])
def test_bad_limit_is_rejected(client, auth_headers, admin, value):
    response = client.get(URL, query_string={"limit": value}, headers=auth_headers(admin))
    assert response.status_code == 400, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert "limit" in response.json["details"]


def test_unknown_query_parameter_is_rejected(client, auth_headers, admin):
    response = client.get(URL, query_string={"scope": "all"}, headers=auth_headers(admin))
    assert response.status_code == 400
    assert "scope" in response.json["details"]


def test_needs_a_token(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert set(response.json) == {"error", "code", "details"}


def test_overdue_counts_only_active_tasks_past_their_time(client, auth_headers, admin):
    now = datetime.now(UTC)
    for status in ("open", "in_progress", "closed", "cancelled"):
        insert_task(admin, status=status, task_time=now - timedelta(seconds=30))
        insert_task(admin, status=status, task_time=now - timedelta(days=400))
        insert_task(admin, status=status, task_time=now + timedelta(minutes=5))
    body = dashboard(client, auth_headers(admin))
    assert body["summary"] == summary(total=12, open_=3, in_progress=3, closed=3, cancelled=3, overdue=4)


def test_figures_follow_changes_made_through_the_api(client, auth_headers, team, data_set):
    headers = auth_headers(team["manager"])
    overdue_open = data_set[0]
    assert (
        client.patch(f"/api/tasks/{overdue_open}/status", json={"status": "closed"}, headers=headers).status_code == 200
    )
    assert client.delete(f"/api/tasks/{data_set[3]}", headers=headers).status_code == 204
    body = dashboard(client, headers)
    assert body["summary"] == summary(total=8, open_=3, in_progress=2, closed=3, cancelled=0, overdue=3)
    assert body["task_types"][0] == {"type": "Call", "count": 3}
    assert body["user_tasks"] == [person(team["bob"], 3), person(team["carol"], 2), person(team["alice"], 1)]


def test_counts_are_exact_beyond_any_page_size(client, auth_headers, admin, member):
    tasks = [
        Task(
            entity_name=f"Entity {number}",
            task_type=("Call", "Email", "Visit")[number % 3],
            task_time=datetime(2030, 1, 1, tzinfo=UTC),
            status=("open", "closed")[number % 2],
            created_by=admin.id,
            contact_person_id=member.id if number % 5 == 0 else None,
        )
        for number in range(1234)
    ]
    db.session.add_all(tasks)
    db.session.commit()
    body = dashboard(client, auth_headers(admin))
    assert body["summary"] == summary(total=1234, open_=617, closed=617)
    assert body["task_types"] == [
        {"type": "Call", "count": 412},
        {"type": "Email", "count": 411},
        {"type": "Visit", "count": 411},
    ]
    assert body["user_tasks"] == [person(member, 247)]


def test_deactivated_assignee_still_counts(client, auth_headers, admin, make_user):
    gone = make_user(full_name="Gone Away")
    insert_task(admin, gone)
    users.set_active(gone, False)
    body = dashboard(client, auth_headers(admin))
    assert body["user_tasks"] == [person(gone, 1)]
    assert body["summary"]["total_tasks"] == 1


def test_role_decides_scope_not_creation(client, auth_headers, team, data_set):
    """A manager who created only two tasks still sees all nine; a member who made none sees only theirs."""
    assert dashboard(client, auth_headers(team["manager"]))["summary"]["total_tasks"] == 9
    assert dashboard(client, auth_headers(team["carol"]))["summary"]["total_tasks"] == 2


def test_overdue_splits_at_now_within_today_and_follows_due_time_changes(client, auth_headers, admin):
    """Overdue = active tasks of the days before today (maintained buckets) + those due today before now (live)."""
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday, earlier_today = today - timedelta(microseconds=1), today + (now - today) / 2
    later_today, tomorrow = now + (today + timedelta(days=1) - now) / 2, today + timedelta(days=1)
    for when in (yesterday, today, earlier_today, later_today, tomorrow):
        for status in ("open", "in_progress", "closed", "cancelled"):
            insert_task(admin, status=status, task_time=when)
    headers = auth_headers(admin)
    trashed = insert_task(admin, task_time=yesterday)
    trashed_today = insert_task(admin, task_time=earlier_today)
    for task_id in (trashed, trashed_today):
        assert client.delete(f"/api/tasks/{task_id}", headers=headers).status_code == 204
    body = dashboard(client, headers)
    assert body["summary"] == summary(total=20, open_=5, in_progress=5, closed=5, cancelled=5, overdue=6)

    moved = insert_task(admin, task_time=tomorrow)
    assert dashboard(client, headers)["summary"]["overdue_tasks"] == 6
    for when, overdue in ((yesterday, 7), (earlier_today, 7), (later_today, 6), (today - timedelta(days=3), 7)):
        response = client.put(f"/api/tasks/{moved}", json={"task_time": when.isoformat()}, headers=headers)
        assert response.status_code == 200, response.json
        assert dashboard(client, headers)["summary"]["overdue_tasks"] == overdue
    assert client.post(f"/api/tasks/{trashed}/restore", headers=headers).status_code == 200
    assert dashboard(client, headers)["summary"]["overdue_tasks"] == 8
