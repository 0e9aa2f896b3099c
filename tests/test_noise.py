"""Noise control (issue 11 item 6): chat notifications for offline members, collapsed repeats, the mail grace, and
per-user delivery modes with hourly and daily digests — through the real SMTP sink and the job worker."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finstack.extensions import db
from finstack.jobs import service as jobs_service
from finstack.jobs import worker
from finstack.notifications import service as notifications_service
from finstack.notifications.models import Notification
from finstack.notifications.service import Draft, notify


@pytest.fixture
def assigner(make_user):
    return make_user(role="manager")


@pytest.fixture
def clock(monkeypatch):
    """One frozen clock for notifications and the job queue (schedules, run_at, claims); `clock.now` moves it."""

    class Clock:
        now = datetime(2030, 1, 1, 9, 10, tzinfo=UTC)

        def advance(self, **delta):
            self.now += timedelta(**delta)

    frozen = Clock()
    monkeypatch.setattr(notifications_service, "utcnow", lambda: frozen.now)
    monkeypatch.setattr(jobs_service, "utcnow", lambda: frozen.now)
    return frozen


def assign(client, auth_headers, actor, assignee, name="Acme Ltd"):
    response = client.post(
        "/api/tasks",
        json={
            "entity_name": name,
            "task_type": "Tax Filing",
            "task_time": "2031-01-01T09:00:00Z",
            "contact_person_id": str(assignee.id),
        },
        headers=auth_headers(actor),
    )
    assert response.status_code == 201, response.json
    return response.json


def inbox(client, auth_headers, user):
    response = client.get("/api/notifications", headers=auth_headers(user))
    assert response.status_code == 200
    return response.json["items"]


def set_mode(client, auth_headers, user, **choices):
    response = client.put("/api/users/me/notification-settings", json=choices, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return response.json


# -- chat -----------------------------------------------------------------------------------------------------------


def open_conversation(client, auth_headers, user, *others, name=None):
    body = {"participant_ids": [str(other.id) for other in others]}
    if name:
        body.update(is_group=True, name=name)
    response = client.post("/api/chat/conversations", json=body, headers=auth_headers(user))
    assert response.status_code in (200, 201), response.json
    return response.json["id"]


def say(client, auth_headers, user, conversation_id, content):
    response = client.post(
        f"/api/chat/conversations/{conversation_id}/messages", json={"content": content}, headers=auth_headers(user)
    )
    assert response.status_code == 201, response.json


def chat_notifications(client, auth_headers, user):
    return [item for item in inbox(client, auth_headers, user) if item["type"] == "chat_message"]


def test_a_dm_notifies_the_other_member_only_while_offline(client, auth_headers, socket_client, make_user):
    alice, bob = make_user(), make_user()
    conversation = open_conversation(client, auth_headers, alice, bob)
    say(client, auth_headers, alice, conversation, "are the accounts ready?")
    [notification] = chat_notifications(client, auth_headers, bob)
    assert notification["message"] == "are the accounts ready?"
    assert alice.username in notification["title"]
    assert chat_notifications(client, auth_headers, alice) == []  # never the author

    socket_client(bob)  # bob comes online: he sees the message live, no notification
    say(client, auth_headers, alice, conversation, "ping")
    assert len(chat_notifications(client, auth_headers, bob)) == 1


def test_group_messages_follow_the_preference_and_mentions_always_notify(
    client, auth_headers, socket_client, make_user
):
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    assert set_mode(client, auth_headers, dave, chat_group=True) == {"delivery_mode": "immediate", "chat_group": True}
    conversation = open_conversation(client, auth_headers, alice, bob, carol, dave, name="Closing")
    socket_client(bob)  # online: nothing, even when mentioned

    say(client, auth_headers, alice, conversation, "morning all")
    assert chat_notifications(client, auth_headers, carol) == []  # default: groups off
    assert len(chat_notifications(client, auth_headers, dave)) == 1

    say(client, auth_headers, alice, conversation, f"@{carol.username} @{bob.username} please check")
    [mention] = chat_notifications(client, auth_headers, carol)
    assert "mentioned you" in mention["title"]
    assert chat_notifications(client, auth_headers, bob) == []


def test_settings_default_and_validation(client, auth_headers, make_user):
    user = make_user()
    response = client.get("/api/users/me/notification-settings", headers=auth_headers(user))
    assert response.json == {"delivery_mode": "immediate", "chat_group": False}
    for bad in ({"delivery_mode": "weekly"}, {"chat_group": "yes"}, {"sound": True}):
        response = client.put("/api/users/me/notification-settings", json=bad, headers=auth_headers(user))
        assert response.status_code == 400 and {"error", "details"} <= set(response.json)


# -- collapse -------------------------------------------------------------------------------------------------------


def test_repeats_about_one_task_collapse_within_the_window_not_after(client, auth_headers, assigner, member, clock):
    task = assign(client, auth_headers, assigner, member)

    def changed(status):
        notify(
            [Draft(member.id, "task_status_changed", "Status changed", f"Now {status}", task_id=uuid.UUID(task["id"]))]
        )
        db.session.commit()

    changed("in progress")
    clock.advance(seconds=30)
    changed("review")
    rows = [item for item in inbox(client, auth_headers, member) if item["type"] == "task_status_changed"]
    assert [(row["message"], row["count"]) for row in rows] == [("Now review", 2)]
    assert rows[0]["created_at"].startswith("2030-01-01T09:10:30")

    clock.advance(seconds=61)
    changed("done")
    rows = [item for item in inbox(client, auth_headers, member) if item["type"] == "task_status_changed"]
    assert [(row["message"], row["count"]) for row in rows] == [("Now done", 1), ("Now review", 2)]

    # a read one is not reopened: the next repeat is a new row
    client.post(f"/api/notifications/{rows[0]['id']}/read", headers=auth_headers(member))
    changed("reopened")
    assert db.session.query(Notification).filter_by(type="task_status_changed").count() == 3


# -- mail grace -----------------------------------------------------------------------------------------------------


@pytest.fixture
def grace(app_config):
    app_config["MAIL_GRACE_SECONDS"] = 120


def test_mail_waits_out_the_grace_and_is_dropped_if_read(
    grace, smtp_sink, client, auth_headers, assigner, member, clock
):
    assign(client, auth_headers, assigner, member)
    [notification] = inbox(client, auth_headers, member)
    assert worker.run_due() == 0  # not due yet
    client.post(f"/api/notifications/{notification['id']}/read", headers=auth_headers(member))
    clock.advance(seconds=121)
    assert worker.run_due() == 1
    assert smtp_sink.messages == []


def test_unread_notification_is_mailed_after_the_grace(grace, smtp_sink, client, auth_headers, assigner, member, clock):
    assign(client, auth_headers, assigner, member)
    clock.advance(seconds=119)
    assert worker.run_due() == 0
    clock.advance(seconds=2)
    assert worker.run_due() == 1
    assert [message["To"] for message in smtp_sink.messages] == [member.email]
    assert "Acme Ltd" in smtp_sink.messages[0]["Subject"]


# -- delivery modes and digests -------------------------------------------------------------------------------------


@pytest.fixture
def digests(app_config):
    app_config["SCHEDULE_DIGEST_SECONDS"] = 60


def test_mode_off_sends_no_mail_but_keeps_the_notification(smtp_sink, client, auth_headers, assigner, member, clock):
    set_mode(client, auth_headers, member, delivery_mode="off")
    assign(client, auth_headers, assigner, member)
    assert len(inbox(client, auth_headers, member)) == 1
    clock.advance(hours=25)
    assert worker.run_due() == 0
    assert smtp_sink.messages == []


def test_hourly_digest_gathers_the_hour_into_one_mail(
    digests, smtp_sink, client, auth_headers, assigner, member, clock
):
    set_mode(client, auth_headers, member, delivery_mode="hourly")  # 09:10
    clock.advance(minutes=5)
    for name in ("Acme Ltd", "Globex", "Initech"):
        assign(client, auth_headers, assigner, member, name=name)
    read_one = next(item for item in inbox(client, auth_headers, member) if "Initech" in item["title"])
    client.post(f"/api/notifications/{read_one['id']}/read", headers=auth_headers(member))

    clock.advance(minutes=20)  # 09:35: the hour has not turned
    assert worker.run_due() == 1  # the digest job, finding nothing due
    assert smtp_sink.messages == []

    clock.advance(minutes=26)  # 10:01
    assert worker.run_due() == 2  # the digest job and its one mail
    [digest] = smtp_sink.messages
    assert digest["To"] == member.email and digest["Subject"] == "FinStack: 2 new notifications"
    body = digest.get_payload()
    assert "Acme Ltd" in body and "Globex" in body and "Initech" not in body

    clock.advance(minutes=30)  # 10:31: already sent for this hour
    assert worker.run_due() == 1
    assert len(smtp_sink.messages) == 1


def test_daily_digest_goes_at_eight_utc(digests, smtp_sink, client, auth_headers, assigner, member, make_user, clock):
    clock.now = datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
    other = make_user()
    set_mode(client, auth_headers, member, delivery_mode="daily")
    set_mode(client, auth_headers, other, delivery_mode="daily")
    clock.advance(minutes=30)
    assign(client, auth_headers, assigner, member, name="Acme Ltd")
    assign(client, auth_headers, assigner, member, name="Globex")

    clock.now = datetime(2030, 1, 1, 7, 59, tzinfo=UTC)
    worker.run_due()
    assert smtp_sink.messages == []

    clock.now = datetime(2030, 1, 1, 8, 0, 30, tzinfo=UTC)
    worker.run_due()
    [digest] = smtp_sink.messages  # one mail, none for `other`, who had nothing
    assert digest["To"] == member.email and digest["Subject"] == "FinStack: 2 new notifications"

    clock.now = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)
    assign(client, auth_headers, assigner, member, name="Initech")
    worker.run_due()
    assert len(smtp_sink.messages) == 1  # tomorrow at 08:00
    clock.now = datetime(2030, 1, 2, 8, 5, tzinfo=UTC)
    worker.run_due()
    assert len(smtp_sink.messages) == 2 and "Initech" in smtp_sink.messages[1]["Subject"]


def test_daily_digest_goes_at_eight_in_the_users_time_zone(
    digests, smtp_sink, client, auth_headers, assigner, member, clock
):
    clock.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    profile = client.put("/api/users/me", json={"timezone": "Asia/Tokyo"}, headers=auth_headers(member))
    assert profile.status_code == 200, profile.json
    set_mode(client, auth_headers, member, delivery_mode="daily")
    clock.advance(minutes=30)
    assign(client, auth_headers, assigner, member, name="Acme Ltd")

    clock.now = datetime(2030, 1, 1, 22, 59, tzinfo=UTC)  # 07:59 in Tokyo
    worker.run_due()
    assert smtp_sink.messages == []
    clock.now = datetime(2030, 1, 1, 23, 0, 30, tzinfo=UTC)  # 08:00 in Tokyo, long before 08:00 UTC
    worker.run_due()
    [digest] = smtp_sink.messages
    assert digest["To"] == member.email
