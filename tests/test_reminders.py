"""Task reminders: stored and recomputed with task_time, sent once each (sweep, worker schedule, CLI, two at once),
never for closed or trashed tasks; the user's time zone on the profile."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from finstack.jobs import worker
from finstack.notifications.models import EmailPreference, Notification
from finstack.tasks import reminders
from finstack.tasks.models import TaskReminder
from tests.overlap import run_two_overlapping

DUE = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The reminder sweep's clock, frozen; `clock.set(instant)` moves it."""

    class Clock:
        now = DUE - timedelta(days=2)

        def set(self, instant):
            self.now = instant

    frozen = Clock()
    monkeypatch.setattr(reminders, "utcnow", lambda: frozen.now)
    return frozen


def _create(client, headers, **fields):
    body = {"entity_name": "Acme Ltd", "task_type": "Tax Filing", "task_time": DUE.isoformat(), **fields}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _reminder_notifications():
    return db.session.scalars(
        sa.select(Notification).where(Notification.type == "task_reminder").order_by(Notification.created_at)
    ).all()


def test_reminders_are_stored_with_their_time_and_sent_once(client, auth_headers, make_user, manager, clock):
    assignee = make_user(full_name="Alice Able")
    task = _create(
        client,
        auth_headers(manager),
        contact_person_id=str(assignee.id),
        reminders=[{"before_minutes": 1440}, {"at": "2030-06-01T08:30:00Z"}, {"before_minutes": 1440}],
    )
    assert [(r["before_minutes"], r["at"], r["sent_at"]) for r in task["reminders"]] == [
        (1440, "2030-05-31T09:00:00+00:00", None),
        (None, "2030-06-01T08:30:00+00:00", None),
    ]

    assert reminders.send_due().sent == 0  # two days ahead: nothing due
    clock.set(DUE - timedelta(hours=12))
    assert reminders.send_due().sent == 1
    assert reminders.send_due().sent == 0  # sent once
    (notification,) = _reminder_notifications()
    assert notification.user_id == assignee.id and notification.task_id.hex == task["id"].replace("-", "")
    assert notification.title == "Reminder: Acme Ltd"
    assert "due 2030-06-01 09:00 (UTC)" in notification.message

    clock.set(DUE)
    assert reminders.send_due().sent == 1
    assert len(_reminder_notifications()) == 2
    shown = client.get(f"/api/tasks/{task['id']}", headers=auth_headers(assignee)).get_json()
    assert all(r["sent_at"] is not None for r in shown["reminders"])


def test_the_message_uses_the_recipients_time_zone_and_an_unassigned_task_reminds_its_creator(
    client, auth_headers, manager, clock
):
    headers = auth_headers(manager)
    assert client.put("/api/users/me", json={"timezone": "Europe/Berlin"}, headers=headers).status_code == 200
    _create(client, headers, reminders=[{"before_minutes": 0}])
    clock.set(DUE)
    assert reminders.send_due().sent == 1
    (notification,) = _reminder_notifications()
    assert notification.user_id == manager.id
    assert "due 2030-06-01 11:00 (Europe/Berlin)" in notification.message


def test_moving_task_time_recomputes_relative_reminders_and_sends_again(
    client, auth_headers, make_user, manager, clock
):
    assignee = make_user()
    headers = auth_headers(manager)
    task = _create(
        client,
        headers,
        contact_person_id=str(assignee.id),
        reminders=[{"before_minutes": 60}, {"at": "2030-05-01T00:00:00Z"}],
    )
    clock.set(DUE)
    assert reminders.send_due().sent == 2

    later = DUE + timedelta(days=7)
    moved = client.put(f"/api/tasks/{task['id']}", json={"task_time": later.isoformat()}, headers=headers).get_json()
    relative, absolute = sorted(moved["reminders"], key=lambda r: r["before_minutes"] is None)
    assert relative == {"before_minutes": 60, "at": "2030-06-08T08:00:00+00:00", "sent_at": None}
    assert absolute["at"] == "2030-05-01T00:00:00+00:00" and absolute["sent_at"] is not None

    assert reminders.send_due().sent == 0
    clock.set(later)
    assert reminders.send_due().sent == 1
    assert len(_reminder_notifications()) == 3


def test_replacing_the_list_keeps_reminders_given_again(client, auth_headers, manager, clock):
    headers = auth_headers(manager)
    task = _create(client, headers, reminders=[{"before_minutes": 60}])
    clock.set(DUE)
    assert reminders.send_due().sent == 1
    changed = client.put(
        f"/api/tasks/{task['id']}",
        json={"reminders": [{"before_minutes": 60}, {"before_minutes": 30}]},
        headers=headers,
    ).get_json()
    assert [(r["before_minutes"], r["sent_at"] is None) for r in changed["reminders"]] == [(60, False), (30, True)]
    assert reminders.send_due().sent == 1  # only the new one
    cleared = client.put(f"/api/tasks/{task['id']}", json={"reminders": []}, headers=headers).get_json()
    assert cleared["reminders"] == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TaskReminder)) == 0


@pytest.mark.parametrize("action", ["close", "cancel", "trash"])
def test_closed_cancelled_or_trashed_tasks_get_no_reminder(client, auth_headers, make_user, manager, clock, action):
    headers = auth_headers(manager)
    task = _create(client, headers, contact_person_id=str(make_user().id), reminders=[{"before_minutes": 60}])
    if action == "trash":
        assert client.delete(f"/api/tasks/{task['id']}", headers=headers).status_code == 204
    else:
        status = "closed" if action == "close" else "cancelled"
        assert (
            client.patch(f"/api/tasks/{task['id']}/status", json={"status": status}, headers=headers).status_code == 200
        )
    clock.set(DUE)
    assert reminders.send_due().sent == 0
    assert _reminder_notifications() == []


@pytest.mark.parametrize(
    "reminder",
    [{}, {"before_minutes": 5, "at": "2030-05-01T00:00:00Z"}, {"before_minutes": -1}, {"at": "not a time"}],
)
def test_invalid_reminders_are_refused(client, auth_headers, manager, reminder):
    body = {"entity_name": "A", "task_type": "B", "task_time": DUE.isoformat(), "reminders": [reminder]}
    response = client.post("/api/tasks", json=body, headers=auth_headers(manager))
    assert response.status_code == 400
    assert "reminders" in response.get_json()["details"]


def test_an_absolute_reminder_after_task_time_is_refused(client, auth_headers, manager):
    body = {
        "entity_name": "A",
        "task_type": "B",
        "task_time": DUE.isoformat(),
        "reminders": [{"at": "2030-06-02T00:00:00Z"}],
    }
    response = client.post("/api/tasks", json=body, headers=auth_headers(manager))
    assert response.status_code == 400 and "reminders" in response.get_json()["details"]


def test_two_sweeps_at_once_send_each_reminder_once(app, client, auth_headers, make_user, manager, clock):
    users = [make_user() for _ in range(3)]
    headers = auth_headers(manager)
    for number in range(12):
        _create(
            client,
            headers,
            contact_person_id=str(users[number % 3].id),
            reminders=[{"before_minutes": 10 + number}, {"before_minutes": 100 + number}],
        )
    clock.set(DUE)
    results = run_two_overlapping(app, lambda: reminders.send_due(chunk_size=5), lock_table="notifications")
    assert sum(result.sent for result in results) == 24
    db.session.expire_all()
    assert len(_reminder_notifications()) == 24
    assert db.session.scalar(sa.select(sa.func.count()).where(TaskReminder.sent_at.is_(None))) == 0


def test_the_worker_sends_reminders_on_their_schedule(app, client, auth_headers, make_user, manager, clock):
    app.config["SCHEDULE_REMINDERS_SECONDS"] = 60
    _create(client, auth_headers(manager), contact_person_id=str(make_user().id), reminders=[{"before_minutes": 5}])
    clock.set(DUE)
    assert worker.run_due() == 1  # the tasks.send_reminders job
    assert len(_reminder_notifications()) == 1


def test_the_cli_sends_and_mails_per_preference(smtp_sink, runner, client, auth_headers, make_user, manager, clock):
    alice, bob = make_user(), make_user()
    db.session.add(EmailPreference(user_id=bob.id, type="task_reminder", enabled=False))
    db.session.commit()
    headers = auth_headers(manager)
    for user in (alice, bob):
        _create(client, headers, contact_person_id=str(user.id), reminders=[{"before_minutes": 5}])
    clock.set(DUE)
    result = runner.invoke(args=["tasks", "send-reminders"])
    assert result.exit_code == 0, result.output
    assert "Reminders sent: 2" in result.output
    # (the assignment e-mail of each task went out too: the command delivers every due mail job)
    reminded = [message["To"] for message in smtp_sink.messages if message["Subject"] == "Reminder: Acme Ltd"]
    assert reminded == [alice.email]
    assert runner.invoke(args=["tasks", "send-reminders"]).output.strip() == "Reminders sent: 0"


def test_profile_time_zone_is_validated(client, auth_headers, member):
    headers = auth_headers(member)
    assert client.get("/api/users/me", headers=headers).get_json()["timezone"] == "UTC"
    answer = client.put("/api/users/me", json={"timezone": "America/New_York"}, headers=headers)
    assert answer.status_code == 200 and answer.get_json()["timezone"] == "America/New_York"
    for bad in ("Mars/Olympus", "+02:00", "", "../etc/passwd"):
        response = client.put("/api/users/me", json={"timezone": bad}, headers=headers)
        assert response.status_code == 400, bad
        assert "timezone" in response.get_json()["details"]


def test_the_recipient_s_socket_hears_the_reminder_it_stores(
    client, auth_headers, make_user, manager, clock, socket_client
):
    """A real Socket.IO client of the assignee receives the `notification` the sweep stored, with its seq (on
    PostgreSQL built by the database beside the row, `notify_from`; on SQLite by `notify`)."""
    assignee = make_user()
    task = _create(
        client, auth_headers(manager), contact_person_id=str(assignee.id), reminders=[{"before_minutes": 60}]
    )
    listener = socket_client(assignee)
    clock.set(DUE - timedelta(minutes=30))
    assert reminders.send_due().sent == 1
    pushed = listener.wait_for("notification")
    (stored,) = _reminder_notifications()
    assert pushed["id"] == str(stored.id) and pushed["type"] == "task_reminder" and pushed["task_id"] == task["id"]
    assert pushed["title"] == "Reminder: Acme Ltd" and pushed["message"] == stored.message
