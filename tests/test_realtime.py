"""Socket.IO against a live server: connection auth, user rooms and notifications, catch-up, session ends,
task rooms, task events and presence. Clients are python-socketio's; the server is the app on a real WSGI server."""

import time
import uuid
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token
from socketio.exceptions import ConnectionError as SocketConnectionError

from finstack import realtime
from finstack.auth.models import TokenFamily
from finstack.chat import conversations
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tasks import events as task_events
from finstack.tasks import service as tasks
from finstack.tasks.schemas import TaskCreate
from finstack.users import service as users
from finstack.users.models import User

DROP_WITHIN = 1.0  # seconds: logout and deactivation must drop live sockets this fast
QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def token_for(user, **kwargs):
    return create_access_token(identity=str(user.id), **kwargs)


def make_task(creator, assignee=None, **fields):
    body = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00", **fields}
    if assignee is not None:
        body["contact_person_id"] = str(assignee.id)
    return tasks.create_task(creator, **TaskCreate().load(body))


def post_comment(client, author, task_id, content="Any news?"):
    response = client.post(
        f"/api/tasks/{task_id}/comments", json={"content": content}, headers=bearer(token_for(author))
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored_notifications(client, user, **query):
    response = client.get("/api/notifications", query_string=query, headers=bearer(token_for(user)))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def seconds_until_disconnected(sock, limit=5):
    start = time.monotonic()
    sock.wait_disconnected(timeout=limit)
    return time.monotonic() - start


# -- connecting ---------------------------------------------------------------------------------------------------


def _revoked(client, user):
    token = token_for(user)
    assert client.post("/api/auth/logout", json={}, headers=bearer(token)).status_code == 200
    return token


def _deactivated(client, user):
    token = token_for(user)
    users.set_active(user, False)
    return token


def _deleted(client, user):
    token = token_for(user)
    db.session.execute(sa.delete(User).where(User.id == user.id))
    db.session.commit()
    return token


def _foreign_signature(client, user):
    claims = jwt.decode(token_for(user), options={"verify_signature": False})
    return jwt.encode(claims, "another-secret-that-is-long-enough-0123456789", algorithm="HS256")


REFUSALS = {
    "no token": (lambda client, user: None, "token_missing"),
    "garbage": (lambda client, user: "not-a-jwt", "token_invalid"),
    "foreign signature": (_foreign_signature, "token_invalid"),
    "expired": (lambda client, user: token_for(user, expires_delta=timedelta(seconds=-5)), "token_expired"),
    "refresh token": (lambda client, user: create_refresh_token(identity=str(user.id)), "token_invalid"),
    "revoked (logged out)": (_revoked, "token_revoked"),
    "deactivated user": (_deactivated, "user_inactive"),
    "deleted user": (_deleted, "user_inactive"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_connect_is_refused_with_a_reason(case, client, member, live_server, socket_client):
    make_token, code = REFUSALS[case]
    sock = socket_client(connect=False)
    token = make_token(client, member)
    with pytest.raises(SocketConnectionError):
        sock.connect(live_server.url, auth={"token": token} if token else None, transports=["websocket"])
    assert not sock.connected
    [reason] = sock.connect_errors
    assert reason["data"]["code"] == code
    assert reason["message"] == reason["data"]["error"]


def test_a_token_in_the_query_string_works_over_long_polling(client, member, admin, socket_client):
    sock = socket_client(member, query_token=True, transports=("polling",))
    assert sock.transport() == "polling"
    task = make_task(admin, member)
    post_comment(client, admin, task.id)
    assert sock.wait_for("notification")["task_id"] == str(task.id)


def test_a_bearer_prefix_is_accepted(member, socket_client):
    assert socket_client(token="Bearer " + token_for(member)).connected


# -- notifications and catch-up -----------------------------------------------------------------------------------


def test_a_notification_arrives_live_with_its_stored_id(client, admin, member, make_user, socket_client):
    bystander = make_user()
    task = make_task(admin, member)  # notifies the assignee before the sockets connect
    mine, theirs = socket_client(member), socket_client(bystander)
    post_comment(client, admin, task.id, "Please call them back")

    pushed = mine.wait_for("notification")
    newest = stored_notifications(client, member)[0]
    assert pushed == {**newest, "seq": pushed["seq"]}  # the stored notification, plus its place in the user's log
    assert pushed["type"] == "task_commented" and pushed["task_id"] == str(task.id) and not pushed["is_read"]
    time.sleep(QUIET)
    assert theirs.events("notification") == []
    assert mine.events("notification") == [pushed]  # once, though user room and nothing else


def test_every_socket_of_the_user_gets_it(client, admin, member, socket_client):
    first, second = socket_client(member), socket_client(member)
    post_comment(client, admin, make_task(admin, member).id)
    assert first.wait_for("notification") == second.wait_for("notification")


def test_nothing_is_pushed_when_the_transaction_rolls_back(app, admin, member, socket_client):
    from finstack.notifications.service import Draft, notify

    sock = socket_client(member)
    notify([Draft(user_id=member.id, type="task_commented", title="t", message="m")], admin)
    db.session.rollback()
    notify([Draft(user_id=member.id, type="task_commented", title="kept", message="m")], admin)
    db.session.commit()
    assert sock.wait_for("notification")["title"] == "kept"
    time.sleep(QUIET)
    assert [n["title"] for n in sock.events("notification")] == ["kept"]


@pytest.fixture
def no_collapse(app_config):
    """Each comment its own notification (repeats within NOTIFICATION_COLLAPSE_SECONDS would update one row)."""
    app_config["NOTIFICATION_COLLAPSE_SECONDS"] = 0


def test_a_client_catches_up_on_what_it_missed_in_order(no_collapse, client, admin, member, socket_client):
    task = make_task(admin, member)
    sock = socket_client(member)
    post_comment(client, admin, task.id, "first")
    last_seen = sock.wait_for("notification")["id"]
    sock.disconnect()

    for number in range(1, 4):
        post_comment(client, admin, task.id, f"while away {number}")

    again = socket_client(member)
    missed = stored_notifications(client, member, since=last_seen)
    assert [n["message"] for n in missed] == ["while away 1", "while away 2", "while away 3"]
    assert len({n["id"] for n in missed}) == 3
    assert again.events("notification") == []  # connected without last_seq: nothing replayed over the socket

    post_comment(client, admin, task.id, "after reconnect")
    live = again.wait_for("notification")
    live.pop("seq")
    assert stored_notifications(client, member, since=missed[-1]["id"]) == [live]  # no gap, no duplicate


# -- sessions that end --------------------------------------------------------------------------------------------


def test_logout_drops_the_sockets_of_that_token_within_a_second(client, member, socket_client):
    token, other_token = token_for(member), token_for(member)
    sock, other_device = socket_client(token=token), socket_client(token=other_token)
    assert client.post("/api/auth/logout", json={}, headers=bearer(token)).status_code == 200
    assert seconds_until_disconnected(sock) < DROP_WITHIN
    time.sleep(QUIET)
    assert other_device.connected  # logging out one device leaves the others


def test_deactivation_drops_every_socket_of_the_user_within_a_second(admin, member, make_user, socket_client):
    socks = [socket_client(member), socket_client(member)]
    bystander = socket_client(make_user())
    users.set_active(db.session.get(User, member.id), False)
    for sock in socks:
        assert seconds_until_disconnected(sock) < DROP_WITHIN
    assert bystander.connected


@pytest.mark.parametrize("change", ["deactivate", "revoke"])
def test_a_change_made_by_another_process_is_noticed_within_a_second(change, member, socket_client):
    """No call into this process at all (as from a CLI without Redis): the periodic re-check finds it."""
    token = token_for(member)
    sock = socket_client(token=token)
    if change == "deactivate":
        db.session.execute(sa.update(User).where(User.id == member.id).values(is_active=False))
    else:
        claims = jwt.decode(token, options={"verify_signature": False})
        db.session.execute(
            sa.update(TokenFamily).where(TokenFamily.id == uuid.UUID(claims["fam"])).values(revoked_at=utcnow())
        )
    db.session.commit()
    assert seconds_until_disconnected(sock) < DROP_WITHIN


def test_disconnect_helpers_act_at_once(app, member, socket_client):
    token = token_for(member)
    sock = socket_client(token=token)
    realtime.disconnect_family(jwt.decode(token, options={"verify_signature": False})["fam"])
    assert seconds_until_disconnected(sock) < 0.4
    sock = socket_client(member)
    realtime.disconnect_user(member.id)
    assert seconds_until_disconnected(sock) < 0.4


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "details_key"),
    [
        ("not an object", "_schema"),
        ({}, "task_id"),
        ({"task_id": "not-a-uuid"}, "task_id"),
        ({"task_id": "00000000-0000-0000-0000-000000000000", "extra": 1}, "extra"),
    ],
)
def test_bad_payloads_get_an_error_ack_and_the_socket_lives_on(payload, details_key, admin, member, socket_client):
    sock = socket_client(member)
    ack = sock.call("join_task", payload, timeout=5)
    assert ack["error"] == "Validation failed"
    assert details_key in ack["details"]
    assert sock.connected
    assert sock.call("join_task", {"task_id": str(make_task(admin).id)}, timeout=5) == {"ok": True}


# -- task rooms and task events -----------------------------------------------------------------------------------


def test_join_task_for_an_unknown_task_is_refused(member, socket_client):
    sock = socket_client(member)
    ack = sock.call("join_task", {"task_id": "00000000-0000-0000-0000-000000000000"}, timeout=5)
    assert ack == {"error": "Task not found", "code": "not_found", "details": {}}


def test_task_events_reach_creator_assignee_and_task_room_once_each(
    app, admin, member, manager, make_user, socket_client
):
    creator_sock, assignee_sock = socket_client(admin), socket_client(member)
    watcher_sock, bystander_sock = socket_client(manager), socket_client(make_user())
    task = make_task(admin, member)
    assert watcher_sock.call("join_task", {"task_id": str(task.id)}, timeout=5) == {"ok": True}

    task.note = "Changed"
    task_events.task_updated(task, {"note": None})
    db.session.commit()
    for sock in (creator_sock, assignee_sock, watcher_sock):
        payload = sock.wait_for("task_updated")
        assert payload["id"] == str(task.id) and payload["note"] == "Changed"
        assert payload["version"] == task.version  # the committed version, not the one before the flush

    task_id = str(task.id)
    task_events.task_deleted(task)
    db.session.delete(task)
    db.session.commit()
    for sock in (creator_sock, assignee_sock):  # addressed by user room: with their seq
        deleted = sock.wait_for("task_deleted")
        assert deleted == {"id": task_id, "seq": deleted["seq"]} and deleted["seq"] > 0
    assert watcher_sock.wait_for("task_deleted") == {"id": task_id}  # the task room's: no log, no seq
    time.sleep(QUIET)
    for sock in (creator_sock, assignee_sock, watcher_sock):
        assert len(sock.events("task_updated")) == 1 and len(sock.events("task_deleted")) == 1
    assert bystander_sock.received == []


def test_leave_task_stops_task_room_events_and_a_rollback_sends_none(app, admin, manager, socket_client):
    task = make_task(admin)
    sock = socket_client(manager)
    assert sock.call("join_task", {"task_id": str(task.id)}, timeout=5) == {"ok": True}
    task.note = "rolled back"
    task_events.task_updated(task)
    db.session.rollback()
    assert sock.call("leave_task", {"task_id": str(task.id)}, timeout=5) == {"ok": True}
    task_events.task_updated(db.session.get(type(task), task.id))
    db.session.commit()
    time.sleep(QUIET)
    assert sock.events("task_updated") == []


def test_a_reassigned_task_tells_the_previous_assignee(app, admin, member, make_user, socket_client):
    newcomer = make_user()
    task = make_task(admin, member)
    previous = socket_client(member)
    task.contact_person_id = newcomer.id
    task_events.task_updated(task, {"contact_person_id": member.id})
    db.session.commit()
    assert previous.wait_for("task_updated")["contact_person_id"] == str(newcomer.id)


def test_task_changes_over_rest_are_pushed_to_creator_assignee_and_task_room(
    client, admin, member, manager, make_user, socket_client
):
    creator, assignee, watcher, bystander = (
        socket_client(admin),
        socket_client(member),
        socket_client(manager),
        socket_client(make_user()),
    )
    response = client.post(
        "/api/tasks",
        json={
            "entity_name": "Globex",
            "task_type": "Visit",
            "task_time": "2030-02-01T10:00:00+00:00",
            "contact_person_id": str(member.id),
        },
        headers=bearer(token_for(admin)),
    )
    assert response.status_code == 201
    created = response.get_json()
    for sock in (creator, assignee):
        pushed = sock.wait_for("task_created")
        assert pushed == {**created, "seq": pushed["seq"]}
    assert watcher.call("join_task", {"task_id": created["id"]}, timeout=5) == {"ok": True}

    response = client.put(
        f"/api/tasks/{created['id']}", json={"note": "Bring the contract"}, headers=bearer(token_for(member))
    )
    assert response.status_code == 200
    for sock in (creator, assignee):
        pushed = sock.wait_for("task_updated")
        assert pushed == {**response.get_json(), "seq": pushed["seq"]}
    assert watcher.wait_for("task_updated") == response.get_json()

    assert client.delete(f"/api/tasks/{created['id']}", headers=bearer(token_for(admin))).status_code == 204
    for sock in (creator, assignee):
        assert {**sock.wait_for("task_deleted"), "seq": 0} == {"id": created["id"], "seq": 0}
    assert watcher.wait_for("task_deleted") == {"id": created["id"]}
    time.sleep(QUIET)
    assert [event for event, _ in bystander.received if event.startswith("task_")] == []
    assert len(creator.events("task_updated")) == 1  # once, though in the user room and (not) the task room


# -- presence -----------------------------------------------------------------------------------------------------


def test_presence_goes_to_conversation_partners_on_first_connect_and_last_disconnect(
    admin, member, make_user, socket_client
):
    stranger = make_user()
    conversations.create_conversation(admin, participant_ids=[member.id])
    partner, outsider = socket_client(admin), socket_client(stranger)

    first = socket_client(member)
    assert partner.wait_for("presence") == {"user_id": str(member.id), "online": True}
    second = socket_client(member)
    first.disconnect()
    time.sleep(QUIET)
    assert len(partner.events("presence")) == 1  # still online through the second socket
    second.disconnect()
    assert partner.wait_for("presence", lambda p: not p["online"]) == {"user_id": str(member.id), "online": False}
    assert outsider.events("presence") == []
    assert first.events("presence") == []


def test_stored_notification_matches_the_database(client, admin, member, socket_client):
    sock = socket_client(member)
    post_comment(client, admin, make_task(admin, member).id)
    pushed = sock.wait_for("notification")
    row = db.session.get(Notification, __import__("uuid").UUID(pushed["id"]))
    assert row is not None and row.user_id == member.id
