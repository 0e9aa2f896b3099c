"""Productivity reports: exact figures on a known data set, scopes, paging, sorting and CSV."""

import csv
import io
from datetime import timedelta
from unittest.mock import ANY

import pytest

from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks.models import Task

FIELDS = [
    "user_id",
    "user_name",
    "user_email",
    "total_tasks_assigned",
    "tasks_completed",
    "tasks_completed_on_time",
    "overdue_tasks",
    "average_completion_time_hours",
    "productivity_score",
]
PRODUCTIVITY = "/api/reports/user-productivity"
OVERVIEW = "/api/reports/team-overview"


def score_000(total, completed, on_time, overdue):
    """000's calculate_productivity_score: the oracle the SQL is checked against."""
    if total == 0:
        return 0.0
    completion_rate = (completed / total) * 100
    on_time_rate = (on_time / total) * 100
    overdue_penalty = (overdue / total) * 100
    score = completion_rate * 0.4 + on_time_rate * 0.3 + (100 - overdue_penalty) * 0.3
    return round(min(max(score, 0), 100), 2)


def _task(assignee, creator, status, created, due, closed=None):
    return Task(
        entity_name="Acme Ltd",
        task_type="Audit Review",
        contact_person_id=assignee.id if assignee else None,
        created_by=creator.id,
        status=status,
        date_created=created,
        task_time=due,
        closed_at=closed,
    )


@pytest.fixture
def team(make_user, manager):
    """Known tasks, with every time relative to now (hours):

    Alice: closed on time (96 h to close), closed late (72 h), open overdue, in progress not yet due, cancelled past
           its time (neither completed nor overdue)      → 5 tasks, 2 completed, 1 on time, 1 overdue, 84 h, 46.0
    Bob:   closed exactly at its deadline (1.5 h), in progress overdue, open overdue
                                                           → 3 tasks, 1 completed, 1 on time, 2 overdue, 1.5 h, 33.33
    Carol and the manager: no tasks                        → zeros
    Dave:  deactivated, one closed task (not listed, but in the team's task totals)
    One unassigned overdue task (team totals only).
    """
    now = utcnow()
    alice = make_user(full_name="Alice Able")
    bob = make_user(full_name="Bob Baker")
    carol = make_user(full_name="Carol Chen")
    dave = make_user(full_name="Dave Dunn")

    def hours(value):
        return now + timedelta(hours=value)

    def add(assignee, status, created, due, closed=None):
        closed_at = hours(closed) if closed is not None else None
        db.session.add(_task(assignee, manager, status, hours(created), hours(due), closed_at))

    add(alice, "closed", created=-100, due=-2, closed=-4)
    add(alice, "closed", created=-80, due=-20, closed=-8)
    add(alice, "open", created=-60, due=-1)
    add(alice, "in_progress", created=-30, due=24)
    add(alice, "cancelled", created=-20, due=-48)
    add(bob, "closed", created=-3, due=-1.5, closed=-1.5)
    add(bob, "in_progress", created=-10, due=-5)
    add(bob, "open", created=-40, due=-30)
    add(dave, "closed", created=-10, due=5, closed=-1)
    add(None, "open", created=-10, due=-2)
    dave.is_active = False
    db.session.commit()
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "manager": manager, "now": now}


def _by_name(items):
    return {item["user_name"]: item for item in items}


def test_exact_figures_for_each_user(client, auth_headers, team):
    response = client.get(PRODUCTIVITY, headers=auth_headers(team["manager"]))
    assert response.status_code == 200, response.json
    rows = _by_name(response.json["items"])
    assert set(rows) == {"Alice Able", "Bob Baker", "Carol Chen", team["manager"].full_name}
    alice = team["alice"]
    assert rows["Alice Able"] == {
        "user_id": str(alice.id),
        "user_name": "Alice Able",
        "user_email": alice.email,
        "total_tasks_assigned": 5,
        "tasks_completed": 2,
        "tasks_completed_on_time": 1,
        "overdue_tasks": 1,
        "average_completion_time_hours": 84.0,
        "productivity_score": 46.0,
    }
    bob = rows["Bob Baker"]
    assert (bob["total_tasks_assigned"], bob["tasks_completed"], bob["tasks_completed_on_time"]) == (3, 1, 1)
    assert bob["overdue_tasks"] == 2
    assert bob["average_completion_time_hours"] == 1.5
    assert bob["productivity_score"] == 33.33
    for name in ("Carol Chen", team["manager"].full_name):
        assert {
            key: value for key, value in rows[name].items() if key not in ("user_id", "user_name", "user_email")
        } == {
            "total_tasks_assigned": 0,
            "tasks_completed": 0,
            "tasks_completed_on_time": 0,
            "overdue_tasks": 0,
            "average_completion_time_hours": 0.0,
            "productivity_score": 0.0,
        }


def test_scores_follow_000s_formula(client, auth_headers, team):
    items = client.get(PRODUCTIVITY, headers=auth_headers(team["manager"])).json["items"]
    for item in items:
        expected = score_000(
            item["total_tasks_assigned"],
            item["tasks_completed"],
            item["tasks_completed_on_time"],
            item["overdue_tasks"],
        )
        assert item["productivity_score"] == expected, item
    assert score_000(5, 2, 1, 1) == 46.0 and score_000(3, 1, 1, 2) == 33.33


@pytest.mark.parametrize(
    ("on_time", "late", "overdue", "not_due", "expected"),
    [
        (3, 0, 0, 0, 100.0),
        (0, 0, 2, 0, 0.0),
        (0, 1, 0, 2, 43.33),  # 130 / 3
        (2, 0, 0, 1, 76.67),  # 230 / 3
        (3, 0, 2, 2, 51.43),  # 360 / 7
    ],
)
def test_score_rounding_matches_000(
    client, auth_headers, make_user, manager, on_time, late, overdue, not_due, expected
):
    now = utcnow()
    user = make_user()
    due = now - timedelta(hours=1)
    tasks = (
        [("closed", due - timedelta(minutes=5))] * on_time
        + [("closed", due + timedelta(minutes=5))] * late
        + [("open", None)] * overdue
    )
    for status, closed in tasks:
        db.session.add(_task(user, manager, status, now - timedelta(hours=3), due, closed))
    for _ in range(not_due):
        db.session.add(_task(user, manager, "in_progress", now - timedelta(hours=3), now + timedelta(hours=5)))
    db.session.commit()
    response = client.get(PRODUCTIVITY, query_string={"user_id": user.id}, headers=auth_headers(manager))
    item = response.json["items"][0]
    assert item["productivity_score"] == expected
    assert expected == score_000(
        item["total_tasks_assigned"], item["tasks_completed"], item["tasks_completed_on_time"], item["overdue_tasks"]
    )


def test_default_order_is_best_score_first_then_name(client, auth_headers, team):
    items = client.get(PRODUCTIVITY, headers=auth_headers(team["manager"])).json["items"]
    assert [item["user_name"] for item in items] == ["Alice Able", "Bob Baker", "Carol Chen", team["manager"].full_name]
    by_name = client.get(PRODUCTIVITY, query_string={"sort_by": "user_name"}, headers=auth_headers(team["manager"]))
    names = [item["user_name"] for item in by_name.json["items"]]
    assert names == sorted(names)


def test_pagination_envelope(client, auth_headers, team):
    headers = auth_headers(team["manager"])
    first = client.get(PRODUCTIVITY, query_string={"per_page": 3}, headers=headers).json
    assert first["pagination"] == {
        "page": 1, "per_page": 3, "total": 4, "pages": 2, "total_exact": True, "next_cursor": ANY
    }
    second = client.get(PRODUCTIVITY, query_string={"per_page": 3, "page": 2}, headers=headers).json
    assert [item["user_name"] for item in first["items"] + second["items"]] == [
        "Alice Able",
        "Bob Baker",
        "Carol Chen",
        team["manager"].full_name,
    ]
    assert client.get(PRODUCTIVITY, query_string={"page": 9}, headers=headers).json["items"] == []


def test_member_sees_only_themselves(client, auth_headers, team):
    alice, bob = team["alice"], team["bob"]
    response = client.get(PRODUCTIVITY, headers=auth_headers(alice))
    assert response.status_code == 200
    assert [item["user_id"] for item in response.json["items"]] == [str(alice.id)]
    assert response.json["pagination"]["total"] == 1
    assert response.json["items"][0]["productivity_score"] == 46.0
    own = client.get(PRODUCTIVITY, query_string={"user_id": alice.id}, headers=auth_headers(alice))
    assert own.status_code == 200 and len(own.json["items"]) == 1
    other = client.get(PRODUCTIVITY, query_string={"user_id": bob.id}, headers=auth_headers(alice))
    assert other.status_code == 403
    assert set(other.json) == {"error", "code", "details"}


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_and_admins_filter_by_user(client, auth_headers, make_user, team, role):
    viewer = make_user(role=role)
    headers = auth_headers(viewer)
    everyone = client.get(PRODUCTIVITY, headers=headers).json
    assert everyone["pagination"]["total"] == 5  # Alice, Bob, Carol, the manager and the viewer; not Dave
    only_bob = client.get(PRODUCTIVITY, query_string={"user_id": team["bob"].id}, headers=headers).json
    assert [item["user_name"] for item in only_bob["items"]] == ["Bob Baker"]
    inactive = client.get(PRODUCTIVITY, query_string={"user_id": team["dave"].id}, headers=headers).json
    assert inactive["items"] == [] and inactive["pagination"]["total"] == 0


def test_date_range_limits_the_tasks_counted_not_the_users(client, auth_headers, team):
    since = (team["now"] - timedelta(hours=50)).isoformat()
    response = client.get(PRODUCTIVITY, query_string={"date_from": since}, headers=auth_headers(team["manager"]))
    rows = _by_name(response.json["items"])
    assert len(rows) == 4
    # Alice's tasks created in the last 50 h: in progress (not due) and cancelled → 30 % of "not overdue" only.
    alice = rows["Alice Able"]
    assert (alice["total_tasks_assigned"], alice["tasks_completed"], alice["overdue_tasks"]) == (2, 0, 0)
    assert alice["productivity_score"] == 30.0
    assert alice["average_completion_time_hours"] == 0.0
    until = (team["now"] - timedelta(hours=50)).isoformat()
    early = client.get(PRODUCTIVITY, query_string={"date_to": until}, headers=auth_headers(team["manager"])).json
    early_alice = _by_name(early["items"])["Alice Able"]
    assert (early_alice["total_tasks_assigned"], early_alice["tasks_completed"]) == (3, 2)
    assert _by_name(early["items"])["Bob Baker"]["total_tasks_assigned"] == 0


@pytest.mark.parametrize(
    "query",
    [{"unknown": "1"}, {"format": "xml"}, {"sort_by": "email"}, {"per_page": 0}, {"user_id": "nope"}],
)
def test_bad_query_is_400(client, auth_headers, manager, query):
    response = client.get(PRODUCTIVITY, query_string=query, headers=auth_headers(manager))
    assert response.status_code == 400
    assert response.json["error"] == "Validation failed"


@pytest.mark.parametrize("url", [PRODUCTIVITY, OVERVIEW])
def test_reports_need_a_token(client, url):
    assert client.get(url).status_code == 401


def _csv(response):
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_has_every_row_with_the_same_fields(client, auth_headers, team):
    headers = auth_headers(team["manager"])
    response = client.get(PRODUCTIVITY, query_string={"format": "csv", "per_page": 1}, headers=headers)
    table = _csv(response)
    assert table[0] == FIELDS
    rows = [dict(zip(FIELDS, row, strict=True)) for row in table[1:]]
    assert len(rows) == 4  # not paged: per_page is ignored
    json_items = client.get(PRODUCTIVITY, headers=headers).json["items"]
    assert [row["user_id"] for row in rows] == [item["user_id"] for item in json_items]
    alice = rows[0]
    assert alice["user_name"] == "Alice Able"
    assert (alice["total_tasks_assigned"], alice["tasks_completed"], alice["tasks_completed_on_time"]) == (
        "5",
        "2",
        "1",
    )
    assert (alice["overdue_tasks"], float(alice["average_completion_time_hours"])) == ("1", 84.0)
    assert float(alice["productivity_score"]) == 46.0
    assert float(rows[1]["productivity_score"]) == 33.33
    assert rows[2]["total_tasks_assigned"] == "0" and float(rows[2]["productivity_score"]) == 0.0


def test_member_csv_is_their_own_row(client, auth_headers, team):
    table = _csv(client.get(PRODUCTIVITY, query_string={"format": "csv"}, headers=auth_headers(team["bob"])))
    assert len(table) == 2 and table[1][0] == str(team["bob"].id)


def test_csv_neutralises_formulas(client, auth_headers, make_user, manager):
    make_user(full_name="=HYPERLINK(1)")
    table = _csv(
        client.get(PRODUCTIVITY, query_string={"format": "csv", "sort_by": "user_name"}, headers=auth_headers(manager))
    )
    assert "'=HYPERLINK(1)" in [row[1] for row in table[1:]]


def test_team_overview(client, auth_headers, team):
    response = client.get(OVERVIEW, query_string={"limit": 2}, headers=auth_headers(team["manager"]))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["total_users"] == 4
    assert body["total_tasks"] == 10  # every task: Dave's and the unassigned one too
    assert body["total_completed"] == 4
    assert body["total_overdue"] == 4
    assert body["average_productivity_score"] == 19.83  # (46 + 33.33 + 0 + 0) / 4
    assert [item["user_name"] for item in body["top_performers"]] == ["Alice Able", "Bob Baker"]
    assert [item["user_name"] for item in body["bottom_performers"]] == ["Carol Chen", team["manager"].full_name]
    assert body["top_performers"][0]["productivity_score"] == 46.0
    assert set(body["top_performers"][0]) == set(FIELDS)


def test_team_overview_date_range(client, auth_headers, team):
    since = (team["now"] - timedelta(hours=15)).isoformat()
    body = client.get(OVERVIEW, query_string={"date_from": since}, headers=auth_headers(team["manager"])).json
    # Created in the last 15 h: Bob's closed and in-progress-overdue tasks, Dave's, and the unassigned one.
    assert (body["total_tasks"], body["total_completed"], body["total_overdue"]) == (4, 2, 2)
    assert body["total_users"] == 4


def test_team_overview_csv(client, auth_headers, team):
    table = _csv(client.get(OVERVIEW, query_string={"format": "csv"}, headers=auth_headers(team["manager"])))
    assert table == [
        ["total_users", "total_tasks", "total_completed", "total_overdue", "average_productivity_score"],
        ["4", "10", "4", "4", "19.83"],
    ]


def test_team_overview_of_a_team_without_tasks(client, auth_headers, admin):
    body = client.get(OVERVIEW, headers=auth_headers(admin)).json
    assert (body["total_users"], body["total_tasks"], body["total_completed"], body["total_overdue"]) == (1, 0, 0, 0)
    assert body["average_productivity_score"] == 0.0
    assert [item["user_id"] for item in body["top_performers"]] == [str(admin.id)]
    assert [item["user_id"] for item in body["bottom_performers"]] == [str(admin.id)]


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_team_overview_allowed(client, auth_headers, make_user, role):
    assert client.get(OVERVIEW, headers=auth_headers(make_user(role=role))).status_code == 200


def test_team_overview_refused_to_members(client, auth_headers, member):
    response = client.get(OVERVIEW, headers=auth_headers(member))
    assert response.status_code == 403
    assert client.get(OVERVIEW, query_string={"format": "csv"}, headers=auth_headers(member)).status_code == 403
