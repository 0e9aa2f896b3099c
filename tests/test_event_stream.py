"""The per-user event log: events recorded in the writer's transaction with a per-user seq, `GET /api/events`, and
the replay of missed events at Socket.IO connect with `auth.last_seq`."""

import threading
import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from finstack.chat import conversations, messages
from finstack.core.event_log import UserEvent
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.stream import service as stream
from finstack.tasks import service as tasks
from tests.processes import Server, environment

QUIET = 0.3


def bearer(user):
    return {"Authorization": f"Bearer {create_access_token(identity=str(user.id))}"}


def note(actor, user, title):
    notify([Draft(user_id=user.id, type="task_commented", title=title, message="m")], actor)
    db.session.commit()


def events(client, user, **query):
    response = client.get("/api/events", query_string=query, headers=bearer(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_events_are_listed_in_order_with_their_seq_and_paged(client, admin, member):
    for number in range(1, 4):
        note(admin, member, f"n{number}")
    page = events(client, member, since=0, limit=2)
    assert [(e["seq"], e["event"], e["data"]["title"]) for e in page["events"]] == [
        (1, "notification", "n1"),
        (2, "notification", "n2"),
    ]
    assert page["last_seq"] == 2 and page["has_more"] is True
    rest = events(client, member, since=2)
    assert [e["data"]["title"] for e in rest["events"]] == ["n3"] and rest["has_more"] is False
    assert events(client, member, since=3) == {"events": [], "last_seq": 3, "has_more": False, "resync": False}
    assert events(client, admin)["events"] == []  # another user's log


def test_the_query_is_validated(client, member):
    for query in ({"limit": 501}, {"limit": 0}, {"since": -1}, {"since": "x"}, {"other": 1}):
        response = client.get("/api/events", query_string=query, headers=bearer(member))
        assert response.status_code == 400, query
    assert client.get("/api/events").status_code == 401


def test_a_rollback_records_nothing(app, admin, member):
    notify([Draft(user_id=member.id, type="task_commented", title="t", message="m")], admin)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserEvent)) == 0


def test_a_reconnect_with_last_seq_replays_each_missed_event_once_in_order_then_live(admin, member, socket_client):
    sock = socket_client(member)
    note(admin, member, "seen")
    last_seq = sock.wait_for("notification")["seq"]
    sock.disconnect()
    for number in range(1, 4):
        note(admin, member, f"away {number}")

    again = socket_client(member, last_seq=last_seq)
    assert again.wait_for("events_replayed") == {"last_seq": last_seq + 3}
    note(admin, member, "live")
    deadline = time.monotonic() + 5
    while len(again.events("notification")) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(QUIET)
    got = [(n["seq"], n["title"]) for n in again.events("notification")]
    assert got == [
        (last_seq + 1, "away 1"),
        (last_seq + 2, "away 2"),
        (last_seq + 3, "away 3"),
        (last_seq + 4, "live"),
    ]


def test_events_past_retention_ask_for_a_resync(app, client, admin, member, socket_client):
    note(admin, member, "old")
    db.session.execute(sa.update(UserEvent).values(created_at=utcnow() - timedelta(days=8)))
    db.session.commit()
    note(admin, member, "new")
    resync = {"events": [], "last_seq": 2, "has_more": False, "resync": True}
    assert events(client, member, since=0) == resync
    page = events(client, member, since=1)
    assert [e["data"]["title"] for e in page["events"]] == ["new"] and page["resync"] is False
    assert stream.prune() == 1
    assert events(client, member, since=0) == resync
    sock = socket_client(member, last_seq=0)
    assert sock.wait_for("events_resync") == {"last_seq": 2}
    assert sock.wait_for("events_replayed") == {"last_seq": 2}
    note(admin, member, "after the reload")
    assert sock.wait_for("notification")["seq"] == 3


def test_a_member_removed_from_a_group_is_not_replayed_its_messages(client, admin, member, make_user):
    third = make_user()
    group, _ = conversations.create_conversation(admin, participant_ids=[member.id, third.id], is_group=True, name="G")
    db.session.commit()
    messages.send_message(admin, group.id, "before removal")
    db.session.commit()
    mine = [e["event"] for e in events(client, member)["events"]]
    assert "chat_message" in mine
    conversations.update_conversation(admin, group.id, remove_participant_ids=[member.id])
    db.session.commit()
    replayed = events(client, member)["events"]
    assert "chat_message" not in [e["event"] for e in replayed]
    assert "chat_message" in [e["event"] for e in events(client, third)["events"]]


def test_concurrent_writers_give_distinct_increasing_seqs(app, admin, member, make_user):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks under real concurrency: PostgreSQL")
    other = make_user()
    db.session.commit()
    ids = (admin.id, member.id, other.id)

    def writer():
        with app.app_context():
            actor = db.session.get(type(admin), ids[0])
            for _ in range(10):
                drafts = [Draft(user_id=user_id, type="task_commented", title="t", message="m") for user_id in ids[1:]]
                notify(drafts, actor)
                db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for user_id in ids[1:]:
        seqs = db.session.scalars(sa.select(UserEvent.seq).where(UserEvent.user_id == user_id).order_by(UserEvent.seq))
        assert list(seqs) == list(range(1, 41))


def sequenced(sock):
    """The seqs of the events `sock` received that carry one, in arrival order."""
    return [data["seq"] for _, data in list(sock.received) if isinstance(data, dict) and "seq" in data]


def comment(url, author, task_id, content):
    response = requests.post(
        f"{url}/api/tasks/{task_id}/comments", json={"content": content}, headers=bearer(author), timeout=30
    )
    assert response.status_code == 201, response.text


def test_events_missed_while_the_server_restarts_are_replayed_once_in_order(
    database_url, tmp_path, admin, member, connect_socket
):
    """A real `python app.py`: the member's socket sees a live event, the server is killed (-9) and events happen
    while it is down (written by this process, straight to the database); after the restart a reconnect with
    `last_seq` replays each of them once, in order, and live events follow without a gap."""
    task = tasks.create_task(
        admin,
        entity_name="Acme Ltd",
        task_type="Call",
        task_time=utcnow() + timedelta(days=1),
        contact_person_id=member.id,
        status="open",
    )
    env = environment(database_url, JOBS_IN_PROCESS="false")
    server = Server(env, tmp_path / "before.log")
    server.wait_up()
    sock = connect_socket(server.url, member)
    comment(server.url, admin, task.id, "before the restart")
    last_seq = sock.wait_for("notification", lambda n: n["type"] == "task_commented", timeout=10)["seq"]
    time.sleep(QUIET)
    last_seq = max(sequenced(sock))
    sock.disconnect()
    server.kill()

    for number in range(1, 4):
        note(admin, member, f"away {number}")

    restarted = Server(env, tmp_path / "after.log")
    try:
        restarted.wait_up()
        again = connect_socket(restarted.url, member, last_seq=last_seq)
        assert again.wait_for("events_replayed", timeout=10) == {"last_seq": last_seq + 3}
        comment(restarted.url, admin, task.id, "after the restart")
        again.wait_for("notification", lambda n: n["type"] == "task_commented", timeout=10)
        time.sleep(QUIET)
        titles = [n["title"] for n in again.events("notification")]
        assert titles[:3] == ["away 1", "away 2", "away 3"] and len(titles) == 4
        seqs = sequenced(again)
        assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))  # no gap, no duplicate, in order
    finally:
        restarted.kill()
