"""Recurring tasks: the rules (daily, every N days, weekly on weekdays, monthly on a day clamped to the month's end,
from completion), DST in the user's time zone, and one next occurrence per close, even under two closes at once."""

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from finstack.tasks import recurrence, service
from finstack.tasks.models import Task
from tests.overlap import run_two_overlapping

BERLIN = ZoneInfo("Europe/Berlin")


def _next(repeat, task_time, closed_at=None, zone=UTC):
    return recurrence.next_task_time({"interval": 1, "from": "due", **repeat}, task_time, closed_at, zone)


# --- the rules ---------------------------------------------------------------------------------------------------


def test_daily_and_every_n_days():
    start = datetime(2030, 1, 30, 9, 0, tzinfo=UTC)
    assert _next({"every": "day"}, start) == datetime(2030, 1, 31, 9, 0, tzinfo=UTC)
    assert _next({"every": "day", "interval": 3}, start) == datetime(2030, 2, 2, 9, 0, tzinfo=UTC)


def test_weekly_on_weekdays():
    wednesday = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    assert wednesday.weekday() == 2
    monday_friday = {"every": "week", "weekdays": [0, 4]}
    assert _next(monday_friday, wednesday).date() == date(2030, 1, 4)  # Friday, same week
    friday = datetime(2030, 1, 4, 9, 0, tzinfo=UTC)
    assert _next(monday_friday, friday).date() == date(2030, 1, 7)  # next Monday
    assert _next({**monday_friday, "interval": 2}, friday).date() == date(2030, 1, 14)  # Monday two weeks on
    assert _next({"every": "week"}, wednesday).date() == date(2030, 1, 9)


def test_monthly_on_day_31_falls_on_the_last_day_of_shorter_months():
    rule = {"every": "month", "month_day": 31}
    task_time = datetime(2030, 1, 31, 9, 0, tzinfo=UTC)
    seen = []
    for _ in range(4):
        task_time = _next(rule, task_time)
        seen.append(task_time.date())
    assert seen == [date(2030, 2, 28), date(2030, 3, 31), date(2030, 4, 30), date(2030, 5, 31)]
    assert _next(rule, datetime(2032, 1, 31, 9, 0, tzinfo=UTC)).date() == date(2032, 2, 29)  # leap year
    # A month_day still ahead in the same month comes first; without month_day the task's own day is kept.
    assert _next(rule, datetime(2030, 1, 10, 9, 0, tzinfo=UTC)).date() == date(2030, 1, 31)
    assert _next({"every": "month", "interval": 3}, datetime(2030, 11, 15, 9, tzinfo=UTC)).date() == date(2031, 2, 15)


def test_from_completion_counts_from_the_close_and_keeps_the_time_of_day():
    task_time = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    closed = datetime(2030, 1, 10, 17, 45, tzinfo=UTC)
    assert _next({"every": "day", "interval": 2, "from": "completion"}, task_time, closed) == datetime(
        2030, 1, 12, 9, 0, tzinfo=UTC
    )


def test_the_local_time_of_day_is_kept_across_dst():
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer (DST starts on 29 March 2026, ends 25 October).
    before_spring = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert _next({"every": "day"}, before_spring, zone=BERLIN) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    before_autumn = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    assert _next({"every": "week"}, before_autumn, zone=BERLIN) == datetime(2026, 10, 31, 8, 0, tzinfo=UTC)
    # The local date decides: 23:30 UTC on 31 January is already 1 February in Berlin.
    late = datetime(2030, 1, 31, 23, 30, tzinfo=UTC)
    assert _next({"every": "month"}, late, zone=BERLIN) == datetime(2030, 2, 28, 23, 30, tzinfo=UTC)  # 1 March local


# --- through the API ---------------------------------------------------------------------------------------------

DUE = "2030-01-02T09:00:00+00:00"


def _create(client, headers, **fields):
    body = {"entity_name": "Acme Ltd", "task_type": "Payroll", "task_time": DUE, **fields}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _series(series_id):
    query = sa.select(Task).where(Task.series_id == uuid.UUID(str(series_id))).order_by(Task.occurrence)
    return db.session.scalars(query.execution_options(populate_existing=True)).all()


def _status(client, headers, task_id, status):
    return client.patch(f"/api/tasks/{task_id}/status", json={"status": status}, headers=headers)


def test_closing_creates_the_next_occurrence_once(client, auth_headers, make_user, manager):
    assignee = make_user()
    headers = auth_headers(manager)
    task = _create(
        client,
        headers,
        contact_person_id=str(assignee.id),
        note="monthly run",
        priority="high",
        tags=["payroll"],
        reminders=[{"before_minutes": 60}, {"at": "2030-01-01T09:00:00Z"}],
        repeat={"every": "week", "weekdays": [4, 0, 4]},
    )
    assert task["repeat"] == {"every": "week", "interval": 1, "weekdays": [0, 4], "month_day": None, "from": "due"}
    assert task["series_id"] == task["id"] and task["occurrence"] == 1

    assert _status(client, headers, task["id"], "closed").status_code == 200
    _, second = _series(task["series_id"])
    assert second.occurrence == 2 and second.status == "open" and second.closed_at is None
    assert second.task_time == datetime(2030, 1, 4, 9, 0, tzinfo=UTC)  # the Friday after Wednesday 2 January
    assert (second.entity_name, second.task_type, second.note, second.priority, second.tags) == (
        "Acme Ltd",
        "Payroll",
        "monthly run",
        "high",
        ["payroll"],
    )
    assert second.contact_person_id == assignee.id and second.created_by == manager.id
    assert sorted((r.before_minutes, r.remind_at) for r in second.reminders if r.kind == "relative") == [
        (60, datetime(2030, 1, 4, 8, 0, tzinfo=UTC))
    ]
    assert [r.remind_at for r in second.reminders if r.kind == "absolute"] == [datetime(2030, 1, 3, 9, 0, tzinfo=UTC)]

    # Reopened and closed again: occurrence 2 exists already, nothing more is created.
    assert _status(client, headers, task["id"], "open").status_code == 200
    assert _status(client, headers, task["id"], "closed").status_code == 200
    assert len(_series(task["series_id"])) == 2

    # Closing occurrence 2 creates occurrence 3 (the next Monday).
    assert _status(client, headers, str(second.id), "closed").status_code == 200
    third = _series(task["series_id"])[-1]
    assert (third.occurrence, third.task_time) == (3, datetime(2030, 1, 7, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize("how", ["cancel", "bulk_close", "update_close"])
def test_every_way_of_closing_creates_the_next(client, auth_headers, manager, how):
    headers = auth_headers(manager)
    task = _create(client, headers, repeat={"every": "day", "interval": 2})
    if how == "cancel":
        response = client.patch(f"/api/tasks/{task['id']}/cancel", headers=headers)
    elif how == "bulk_close":
        response = client.post(
            "/api/tasks/bulk-status", json={"task_ids": [task["id"]], "status": "closed"}, headers=headers
        )
    else:
        response = client.put(f"/api/tasks/{task['id']}", json={"status": "closed"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert [t.task_time for t in _series(task["id"])] == [
        datetime(2030, 1, 2, 9, 0, tzinfo=UTC),
        datetime(2030, 1, 4, 9, 0, tzinfo=UTC),
    ]


def test_from_completion_uses_the_close_time_in_the_assignees_zone(
    client, auth_headers, make_user, manager, monkeypatch
):
    assignee = make_user(full_name="Berta Berlin")
    assert (
        client.put("/api/users/me", json={"timezone": "Europe/Berlin"}, headers=auth_headers(assignee)).status_code
        == 200
    )
    headers = auth_headers(manager)
    task = _create(
        client,
        headers,
        task_time="2030-01-02T08:00:00Z",  # 09:00 in Berlin
        contact_person_id=str(assignee.id),
        repeat={"every": "day", "from": "completion"},
    )
    # Closed at 23:30 UTC on 10 January: already 11 January in Berlin, so the next is 12 January, 09:00 Berlin.
    monkeypatch.setattr(service, "utcnow", lambda: datetime(2030, 1, 10, 23, 30, tzinfo=UTC))
    assert _status(client, headers, task["id"], "closed").status_code == 200
    assert _series(task["id"])[-1].task_time == datetime(2030, 1, 12, 8, 0, tzinfo=UTC)


def test_a_task_without_repeat_or_with_repeat_removed_does_not_recur(client, auth_headers, manager):
    headers = auth_headers(manager)
    plain = _create(client, headers)
    assert _status(client, headers, plain["id"], "closed").status_code == 200
    stopped = _create(client, headers, repeat={"every": "day"})
    assert client.put(f"/api/tasks/{stopped['id']}", json={"repeat": None}, headers=headers).status_code == 200
    assert _status(client, headers, stopped["id"], "closed").status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Task)) == 2


@pytest.mark.parametrize(
    "repeat",
    [
        {"every": "year"},
        {"every": "day", "interval": 0},
        {"every": "day", "weekdays": [1]},
        {"every": "week", "weekdays": [7]},
        {"every": "week", "month_day": 3},
        {"every": "month", "month_day": 32},
        {"every": "day", "from": "start"},
        {"every": "day", "often": True},
    ],
)
def test_invalid_rules_are_refused(client, auth_headers, manager, repeat):
    body = {"entity_name": "A", "task_type": "B", "task_time": DUE, "repeat": repeat}
    response = client.post("/api/tasks", json=body, headers=auth_headers(manager))
    assert response.status_code == 400
    assert "repeat" in response.get_json()["details"]


def test_two_concurrent_closes_create_one_next_occurrence(app, client, auth_headers, make_user, manager):
    assignee = make_user()
    task = _create(client, auth_headers(manager), contact_person_id=str(assignee.id), repeat={"every": "day"})
    people = (manager, assignee)

    def close():
        person = people[close.calls % 2]
        close.calls += 1
        with app.test_client() as own_client:
            return _status(own_client, auth_headers(person), task["id"], "closed").status_code

    close.calls = 0
    statuses = run_two_overlapping(app, close, lock_table="tasks")
    assert sorted(statuses) in ([200, 200], [200, 409])
    db.session.expire_all()
    series = _series(task["id"])
    assert [(t.occurrence, t.status) for t in series] == [(1, "closed"), (2, "open")]
    assert series[1].task_time == datetime(2030, 1, 3, 9, 0, tzinfo=UTC)


def test_a_second_close_of_one_occurrence_meets_the_unique_index(client, auth_headers, manager):
    """Closing the same occurrence twice without a reopen in between (as two concurrent closes might, once the row
    lock is gone) hits the unique (series_id, occurrence) and creates nothing."""
    headers = auth_headers(manager)
    task = _create(client, headers, repeat={"every": "day"})
    assert _status(client, headers, task["id"], "closed").status_code == 200
    first = db.session.get(Task, _series(task["id"])[0].id)
    assert recurrence.after_status_change(first, "open", first.closed_at) is None
    db.session.commit()
    assert len(_series(task["id"])) == 2


def test_board_moves_to_closed_recur(client, auth_headers, manager):
    headers = auth_headers(manager)
    project = client.post("/api/projects", json={"name": "Payroll", "key": "PAY"}, headers=headers)
    assert project.status_code == 201, project.get_json()
    task = _create(client, headers, project_id=project.get_json()["id"], repeat={"every": "day"})
    response = client.patch(f"/api/tasks/{task['id']}/move", json={"status": "closed"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    series = _series(task["id"])
    assert [(t.status, t.project_id) for t in series] == [
        ("closed", series[0].project_id),
        ("open", series[0].project_id),
    ]
