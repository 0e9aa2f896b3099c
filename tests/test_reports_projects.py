"""The project report, team performance and workload: exact figures on a hand-made data set, medians with odd and
even counts, scoping by project and team, who sees which rows, trashed tasks left out, and CSV.

People: `admin`, `gm` (a global manager), `lead` (manager of team T), `alice` (member of T), `bob` and `carol`
(members in no team). Project P is private, of team T; project Q is open, without a team.
"""

import csv
import io
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from finstack.core.sql import hours_between
from finstack.extensions import db
from finstack.tasks.models import Task

MISSING = "00000000-0000-0000-0000-000000000000"
NOW = datetime.now(UTC)
MONDAY = datetime.combine(NOW.date() - timedelta(days=NOW.weekday()), time.min, UTC)
BASE = MONDAY - timedelta(weeks=4) + timedelta(days=1)  # a Tuesday in the 4th of the last 8 weeks (index 3)
FUTURE = NOW + timedelta(days=30)
PAST = NOW - timedelta(days=2)


def add_task(world, assignee, *, status="open", priority="medium", project="P", hours=None, task_time=FUTURE,
             created=BASE, trashed=False):
    task = Task(
        entity_name="Acme",
        task_type="Call",
        task_time=task_time,
        status=status,
        priority=priority,
        created_by=world["admin"].id,
        contact_person_id=world[assignee].id if assignee else None,
        project_id=uuid.UUID(world[project]["id"]) if project else None,
        date_created=created,
        closed_at=created + timedelta(hours=hours) if hours is not None else None,
        deleted_at=NOW if trashed else None,
    )
    db.session.add(task)


@pytest.fixture
def world(client, auth_headers, make_user, admin):
    people = {
        "admin": admin,
        "gm": make_user(role="manager", full_name="Gina Manager"),
        "lead": make_user(full_name="Lee Lead"),
        "alice": make_user(full_name="Alice Archer"),
        "bob": make_user(full_name="Bob Baker"),
        "carol": make_user(full_name="Carol Cook"),
    }
    headers = auth_headers(admin)
    team = client.post("/api/teams", json={"name": "T"}, headers=headers).json
    for name, role in (("lead", "manager"), ("alice", "member")):
        body = {"user_id": str(people[name].id), "role": role}
        assert client.post(f"/api/teams/{team['id']}/members", json=body, headers=headers).status_code == 201
    p = {"name": "Payroll", "key": "PAY", "visibility": "private", "team_id": team["id"]}
    world = {**people, "T": team, "P": client.post("/api/projects", json=p, headers=headers).json}
    world["Q"] = client.post("/api/projects", json={"name": "Quarterly", "key": "QRT"}, headers=headers).json
    for hours, priority in ((10, "high"), (20, "medium"), (40, "low")):
        add_task(world, "alice", status="closed", priority=priority, hours=hours)
    add_task(world, "alice")
    add_task(world, "alice", status="in_progress", priority="high", task_time=PAST)
    add_task(world, "alice", status="cancelled", priority="low")
    for hours in (4, 6, 10, 30):
        add_task(world, "bob", status="closed", hours=hours)
    add_task(world, "bob", priority="high", task_time=PAST)
    add_task(world, None, priority="low", created=MONDAY + timedelta(minutes=1))
    add_task(world, "alice", status="closed", hours=1000, trashed=True)
    add_task(world, "bob", task_time=PAST, trashed=True)
    add_task(world, "carol", project="Q")
    add_task(world, "alice", status="closed", project="Q", hours=2)
    db.session.commit()
    return world


def get(client, auth_headers, world, who, url, **query):
    return client.get(url, query_string=query, headers=auth_headers(world[who]))


def ok(response):
    assert response.status_code == 200, response.json
    return response.json


def performance(world, name, total, completed, in_progress, open_, cancelled, rate, median):
    user = world[name]
    return {
        "user_id": str(user.id),
        "username": user.username,
        "full_name": user.full_name,
        "total": total,
        "completed": completed,
        "in_progress": in_progress,
        "open": open_,
        "cancelled": cancelled,
        "completion_rate": rate,
        "median_hours_to_close": median,
    }


def alice_everywhere(world):
    # Closed in 2, 10, 20 and 40 hours: an even count, the median is the mean of 10 and 20.
    return performance(world, "alice", 7, 4, 1, 1, 1, 66.7, 15.0)


def alice_in_p(world):
    # Closed in 10, 20 and 40 hours (the trashed one, 1000 hours, is left out): an odd count.
    return performance(world, "alice", 6, 3, 1, 1, 1, 60.0, 20.0)


def bob(world):
    # Closed in 4, 6, 10 and 30 hours: the mean of 6 and 10.
    return performance(world, "bob", 5, 4, 0, 1, 0, 80.0, 8.0)


def carol(world):
    return performance(world, "carol", 1, 0, 0, 1, 0, 0.0, None)


TEAM_PERFORMANCE = "/api/reports/team-performance"
WORKLOAD = "/api/reports/workload"


@pytest.mark.parametrize("who", ["admin", "gm"])
def test_team_performance_for_managers_and_admins(client, auth_headers, world, who):
    body = ok(get(client, auth_headers, world, who, TEAM_PERFORMANCE))
    assert body["items"] == [alice_everywhere(world), bob(world), carol(world)]
    assert body["pagination"] == {
        "page": 1, "per_page": 20, "total": 3, "pages": 1, "total_exact": True, "next_cursor": None
    }


def test_team_performance_scoped_by_project_and_by_team(client, auth_headers, world):
    by_project = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, project_id=world["P"]["id"]))
    assert by_project["items"] == [alice_in_p(world), bob(world)]
    by_team = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, team_id=world["T"]["id"]))
    assert by_team["items"] == by_project["items"]
    q = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, project_id=world["Q"]["id"]))
    assert q["items"] == [
        performance(world, "alice", 1, 1, 0, 0, 0, 100.0, 2.0),
        carol(world),
    ]


def test_team_performance_date_range_and_paging(client, auth_headers, world):
    day = BASE.date().isoformat()
    body = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, date_from=day, date_to=day))
    assert [item["full_name"] for item in body["items"]] == ["Alice Archer", "Bob Baker", "Carol Cook"]
    later = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, date_from=MONDAY.date().isoformat()))
    assert later["items"] == []
    second = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE, per_page=2, page=2))
    assert second["items"] == [carol(world)]
    assert second["pagination"] == {
        "page": 2, "per_page": 2, "total": 3, "pages": 2, "total_exact": True, "next_cursor": None
    }


def test_median_agrees_with_postgresqls_percentile_cont(client, auth_headers, world):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's")
    hours = hours_between(Task.closed_at, Task.date_created)
    medians = dict(
        db.session.execute(
            sa.select(Task.contact_person_id, sa.func.percentile_cont(0.5).within_group(hours))
            .where(Task.status == "closed", Task.live())
            .group_by(Task.contact_person_id)
        ).all()
    )
    body = ok(get(client, auth_headers, world, "admin", TEAM_PERFORMANCE))
    for item in body["items"]:
        expected = medians.get(uuid.UUID(item["user_id"]))
        assert item["median_hours_to_close"] == (round(expected, 2) if expected is not None else None)


@pytest.mark.parametrize("url", [TEAM_PERFORMANCE, WORKLOAD])
def test_a_member_sees_their_own_row_only(client, auth_headers, world, url):
    rows = ok(get(client, auth_headers, world, "alice", url))["items"]
    assert [row["user_id"] for row in rows] == [str(world["alice"].id)]
    # A team member asking about the team still gets only their own row.
    rows = ok(get(client, auth_headers, world, "alice", url, team_id=world["T"]["id"]))["items"]
    assert [row["user_id"] for row in rows] == [str(world["alice"].id)]
    assert ok(get(client, auth_headers, world, "carol", url, project_id=world["Q"]["id"]))["items"][0]["full_name"] == (
        "Carol Cook"
    )


@pytest.mark.parametrize("url", [TEAM_PERFORMANCE, WORKLOAD])
def test_a_team_manager_sees_the_members_of_the_team(client, auth_headers, world, url):
    rows = ok(get(client, auth_headers, world, "lead", url, team_id=world["T"]["id"]))["items"]
    assert [row["full_name"] for row in rows] == ["Alice Archer"]  # bob holds tasks of P but is not in T
    assert ok(get(client, auth_headers, world, "lead", url))["items"] == []  # without team_id: their own (none)


@pytest.mark.parametrize("url", [TEAM_PERFORMANCE, WORKLOAD])
def test_scopes_the_caller_may_not_read(client, auth_headers, world, url):
    private = get(client, auth_headers, world, "carol", url, project_id=world["P"]["id"])
    assert private.status_code == 404 and private.json["code"] == "not_found"
    foreign_team = get(client, auth_headers, world, "carol", url, team_id=world["T"]["id"])
    assert foreign_team.status_code == 403 and foreign_team.json["code"] == "forbidden"
    assert get(client, auth_headers, world, "admin", url, project_id=MISSING).status_code == 404
    assert get(client, auth_headers, world, "admin", url, team_id=MISSING).status_code == 404
    assert client.get(url).status_code == 401


def workload_row(world, name, open_, in_progress, low, medium, high, overdue, total):
    user = world[name]
    return {
        "user_id": str(user.id),
        "username": user.username,
        "full_name": user.full_name,
        "open": open_,
        "in_progress": in_progress,
        "priority_low": low,
        "priority_medium": medium,
        "priority_high": high,
        "overdue": overdue,
        "total_open": total,
    }


def test_workload(client, auth_headers, world):
    body = ok(get(client, auth_headers, world, "gm", WORKLOAD))
    assert body["items"] == [
        workload_row(world, "alice", 1, 1, 0, 1, 1, 1, 2),
        workload_row(world, "bob", 1, 0, 0, 0, 1, 1, 1),  # bob's trashed overdue task is not counted
        workload_row(world, "carol", 1, 0, 0, 1, 0, 0, 1),
    ]
    scoped = ok(get(client, auth_headers, world, "gm", WORKLOAD, project_id=world["Q"]["id"]))
    assert scoped["items"] == [workload_row(world, "carol", 1, 0, 0, 1, 0, 0, 1)]


def parse_csv(response):
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def as_cells(item):
    return {key: "" if value is None else str(value) for key, value in item.items()}


def assert_csv_matches(rows, items):
    """The CSV has a header row naming the JSON fields (the schema's order), then one row per JSON item."""
    header = rows[0]
    assert sorted(header) == sorted(items[0])
    assert [dict(zip(header, row, strict=True)) for row in rows[1:]] == [as_cells(item) for item in items]


@pytest.mark.parametrize("url", [TEAM_PERFORMANCE, WORKLOAD])
def test_csv_has_the_json_columns_and_every_row(client, auth_headers, world, url):
    items = ok(get(client, auth_headers, world, "admin", url, per_page=100))["items"]
    rows = parse_csv(get(client, auth_headers, world, "admin", url, format="csv", per_page=1))
    assert rows[0][:3] == ["user_id", "username", "full_name"]
    assert_csv_matches(rows, items)


# --- GET /api/reports/project/<id> -----------------------------------------------------------------------------


def project_url(world, name="P"):
    return f"/api/reports/project/{world[name]['id']}"


def test_project_report(client, auth_headers, world):
    body = ok(get(client, auth_headers, world, "admin", project_url(world)))
    assert body["project"] == {"id": world["P"]["id"], "key": "PAY", "name": "Payroll"}
    assert body["progress"] == {
        "total_tasks": 12,
        "open_tasks": 3,
        "in_progress_tasks": 1,
        "completed_tasks": 7,
        "cancelled_tasks": 1,
        "overdue_tasks": 2,
        "progress_percentage": 63.6,
    }
    assert body["by_priority"] == [
        {"priority": "low", "total": 3, "open": 1, "in_progress": 0, "closed": 1, "cancelled": 1, "overdue": 0},
        {"priority": "medium", "total": 6, "open": 1, "in_progress": 0, "closed": 5, "cancelled": 0, "overdue": 0},
        {"priority": "high", "total": 3, "open": 1, "in_progress": 1, "closed": 1, "cancelled": 0, "overdue": 2},
    ]
    alice, bob_ = world["alice"], world["bob"]
    assert body["by_assignee"] == [
        {"user_id": str(alice.id), "username": alice.username, "full_name": "Alice Archer", "total": 6, "open": 1,
         "in_progress": 1, "closed": 3, "overdue": 1},
        {"user_id": str(bob_.id), "username": bob_.username, "full_name": "Bob Baker", "total": 5, "open": 1,
         "in_progress": 0, "closed": 4, "overdue": 1},
        {"user_id": None, "username": None, "full_name": None, "total": 1, "open": 1, "in_progress": 0, "closed": 0,
         "overdue": 0},
    ]
    weeks = [(MONDAY - timedelta(weeks=back)).date().isoformat() for back in range(7, -1, -1)]
    assert [week["week_start"] for week in body["weekly"]] == weeks
    assert [week["created"] for week in body["weekly"]] == [0, 0, 0, 11, 0, 0, 0, 1]
    assert [week["closed"] for week in body["weekly"]] == [0, 0, 0, 7, 0, 0, 0, 0]


def test_project_report_weeks(client, auth_headers, world):
    body = ok(get(client, auth_headers, world, "admin", project_url(world), weeks=2))
    assert body["weekly"] == [
        {"week_start": (MONDAY - timedelta(weeks=1)).date().isoformat(), "created": 0, "closed": 0},
        {"week_start": MONDAY.date().isoformat(), "created": 1, "closed": 0},
    ]
    for weeks in (0, 53, "x"):
        assert get(client, auth_headers, world, "admin", project_url(world), weeks=weeks).status_code == 400


def test_a_project_without_tasks(client, auth_headers, world):
    empty = client.post("/api/projects", json={"name": "Empty", "key": "EMP"}, headers=auth_headers(world["admin"]))
    body = ok(client.get(f"/api/reports/project/{empty.json['id']}", headers=auth_headers(world["admin"])))
    assert body["progress"]["total_tasks"] == 0 and body["progress"]["progress_percentage"] == 0.0
    assert [row["total"] for row in body["by_priority"]] == [0, 0, 0]
    assert body["by_assignee"] == []


@pytest.mark.parametrize("who", ["admin", "gm", "lead", "alice"])
def test_project_report_readers(client, auth_headers, world, who):
    assert ok(get(client, auth_headers, world, who, project_url(world)))["progress"]["total_tasks"] == 12


def test_project_report_refused_to_outsiders_of_a_private_project(client, auth_headers, world):
    for url in (project_url(world), f"/api/reports/project/{MISSING}"):
        response = get(client, auth_headers, world, "carol", url)
        assert response.status_code == 404 and response.json["code"] == "not_found"
    assert ok(get(client, auth_headers, world, "carol", project_url(world, "Q")))["progress"]["total_tasks"] == 2
    assert client.get(project_url(world)).status_code == 401


@pytest.mark.parametrize("table", ["by_assignee", "by_priority", "weekly"])
def test_project_report_csv_tables(client, auth_headers, world, table):
    items = ok(get(client, auth_headers, world, "admin", project_url(world)))[table]
    rows = parse_csv(get(client, auth_headers, world, "admin", project_url(world), format="csv", table=table))
    assert_csv_matches(rows, items)


def test_reports_cost_a_constant_number_of_statements(client, auth_headers, world):
    headers = auth_headers(world["admin"])
    urls = [TEAM_PERFORMANCE, WORKLOAD, project_url(world)]

    def statements():
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            for url in urls:
                assert client.get(url, headers=headers).status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    before = statements()
    for name in ("alice", "bob", "carol", "lead"):
        for _ in range(5):
            add_task(world, name, status="closed", hours=3)
            add_task(world, name, task_time=PAST)
    db.session.commit()
    assert statements() == before
