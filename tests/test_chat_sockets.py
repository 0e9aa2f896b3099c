"""Chat over Socket.IO against a live server: send_message, typing, mark_read, membership, catch-up."""

import time
import uuid

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from finstack.chat import conversations
from finstack.chat.models import Message
from finstack.extensions import db

QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive


def logged(payload):
    """A member's copy of a conversation event: the event as stored, plus its `seq` in the member's event log."""
    assert isinstance(payload.pop("seq"), int)
    return payload


def bearer(user):
    return {"Authorization": f"Bearer {create_access_token(identity=str(user.id))}"}


@pytest.fixture
def alice(make_user):
    return make_user(full_name="Alice")


@pytest.fixture
def bob(make_user):
    return make_user(full_name="Bob")


@pytest.fixture
def carol(make_user):
    return make_user(full_name="Carol")


@pytest.fixture
def dm(alice, bob):
    conversation, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    return str(conversation.id)


def send(sock, conversation_id, content, client_id=None, **extra):
    payload = {"conversation_id": conversation_id, "content": content, "client_id": client_id or uuid.uuid4().hex}
    return sock.call("send_message", {**payload, **extra}, timeout=5)


def stored_count(conversation_id):
    return db.session.scalar(sa.select(sa.func.count()).where(Message.conversation_id == uuid.UUID(conversation_id)))


def test_a_message_is_acked_with_the_stored_message_and_delivered_to_the_other_member(dm, alice, bob, socket_client):
    alices, bobs = socket_client(alice), socket_client(bob)
    ack = send(alices, dm, "Hello Bob", client_id="c-1")
    assert ack["content"] == "Hello Bob" and ack["client_id"] == "c-1"
    assert ack["sender_id"] == str(alice.id) and ack["conversation_id"] == dm
    assert logged(bobs.wait_for("chat_message")) == ack
    assert logged(alices.wait_for("chat_message")) == ack  # the sender's other tabs see it too; dedupe by id
    assert stored_count(dm) == 1


def test_a_retried_client_id_is_stored_once_and_acked_with_the_original(dm, alice, bob, socket_client):
    alices, bobs = socket_client(alice), socket_client(bob)
    first = send(alices, dm, "Pay the invoice", client_id="retry-me")
    again = send(alices, dm, "Pay the invoice", client_id="retry-me")
    assert again == first
    assert stored_count(dm) == 1
    bobs.wait_for("chat_message")
    time.sleep(QUIET)
    assert len(bobs.events("chat_message")) == 1


def test_typing_is_relayed_to_the_other_members_only(dm, alice, bob, socket_client):
    typing_tab, other_tab, bobs = socket_client(alice), socket_client(alice), socket_client(bob)
    assert typing_tab.call("typing", {"conversation_id": dm, "is_typing": True}, timeout=5) == {"ok": True}
    assert bobs.wait_for("typing") == {"conversation_id": dm, "user_id": str(alice.id), "is_typing": True}
    time.sleep(QUIET)
    assert typing_tab.events("typing") == [] and other_tab.events("typing") == []


def test_mark_read_sends_a_read_receipt_to_the_members(dm, alice, bob, socket_client):
    alices, bobs = socket_client(alice), socket_client(bob)
    message = send(alices, dm, "Read me")
    receipt = bobs.call("mark_read", {"conversation_id": dm, "message_ids": [message["id"]]}, timeout=5)
    assert receipt["user_id"] == str(bob.id) and receipt["last_read_message_id"] == message["id"]
    assert logged(alices.wait_for("read_receipt")) == receipt
    assert logged(bobs.wait_for("read_receipt")) == receipt


def test_a_non_member_gets_error_acks_and_nothing_is_stored_or_relayed(dm, alice, bob, carol, socket_client):
    alices, bobs, carols = socket_client(alice), socket_client(bob), socket_client(carol)
    message = send(alices, dm, "Between us")
    bobs.wait_for("chat_message")

    assert send(carols, dm, "Let me in") == {"error": "Conversation not found", "code": "not_found", "details": {}}
    assert carols.call("typing", {"conversation_id": dm, "is_typing": True}, timeout=5)["error"] == (
        "Conversation not found"
    )
    ack = carols.call("mark_read", {"conversation_id": dm, "message_ids": [message["id"]]}, timeout=5)
    assert ack["error"] == "Conversation not found"

    time.sleep(QUIET)
    assert stored_count(dm) == 1
    for sock in (alices, bobs):
        assert [event for event, _ in sock.received if event in ("typing", "read_receipt")] == []
        assert len(sock.events("chat_message")) == 1
    assert carols.received == []  # and she never heard the message


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"content": "no conversation", "client_id": "x"}, "conversation_id"),
        ({"conversation_id": "not-a-uuid", "content": "x", "client_id": "x"}, "conversation_id"),
        ({"conversation_id": str(uuid.uuid4()), "content": "no client id"}, "client_id"),
        ({"conversation_id": str(uuid.uuid4()), "content": "x", "client_id": "x", "sender_id": "me"}, "sender_id"),
        ({"conversation_id": str(uuid.uuid4()), "content": "x" * 5001, "client_id": "x"}, "content"),
    ],
)
def test_bad_send_message_payloads_get_validation_errors(payload, field, alice, socket_client):
    sock = socket_client(alice)
    ack = sock.call("send_message", payload, timeout=5)
    assert ack["error"] == "Validation failed" and field in ack["details"]
    assert sock.connected


def test_a_blank_message_is_refused_by_the_service(dm, alice, socket_client):
    ack = send(socket_client(alice), dm, "   ")
    assert ack["error"] == "Validation failed" and "content" in ack["details"]
    assert stored_count(dm) == 0


def test_an_offline_recipient_catches_up_in_order_after_reconnect(client, dm, alice, bob, socket_client):
    alices, bobs = socket_client(alice), socket_client(bob)
    first = send(alices, dm, "before")
    last_seen = bobs.wait_for("chat_message")["id"]
    assert last_seen == first["id"]
    bobs.disconnect()

    sent = [send(alices, dm, f"while away {number}")["id"] for number in range(1, 4)]

    bobs = socket_client(bob)
    response = client.get(
        f"/api/chat/conversations/{dm}/messages", query_string={"after": last_seen}, headers=bearer(bob)
    )
    assert response.status_code == 200, response.get_json()
    assert [m["id"] for m in response.get_json()["items"]] == sent
    live = send(alices, dm, "after reconnect")
    assert logged(bobs.wait_for("chat_message")) == live


def test_a_conversation_created_while_connected_is_delivered_live(client, alice, bob, socket_client):
    alices, bobs = socket_client(alice), socket_client(bob)
    response = client.post(
        "/api/chat/conversations", json={"participant_ids": [str(bob.id)], "is_group": False}, headers=bearer(alice)
    )
    assert response.status_code in (200, 201), response.get_json()
    conversation_id = response.get_json()["id"]
    ack = send(alices, conversation_id, "New DM")
    assert logged(bobs.wait_for("chat_message")) == ack


def test_a_removed_member_stops_receiving(client, alice, bob, carol, make_user, socket_client):
    dave = make_user()
    conversation, _ = conversations.create_conversation(
        alice, participant_ids=[bob.id, carol.id, dave.id], is_group=True, name="Closing"
    )
    conversation_id = str(conversation.id)
    alices, carols = socket_client(alice), socket_client(carol)
    response = client.patch(
        f"/api/chat/conversations/{conversation_id}",
        json={"remove_participant_ids": [str(carol.id)]},
        headers=bearer(alice),
    )
    assert response.status_code == 200, response.get_json()
    send(alices, conversation_id, "Carol is gone")
    alices.wait_for("chat_message")
    time.sleep(QUIET)
    assert carols.events("chat_message") == []


# -- task threads are live ------------------------------------------------------------------------------------------


@pytest.fixture
def task_thread(alice):
    from finstack.tasks import service as tasks
    from finstack.tasks.schemas import TaskCreate

    body = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00"}
    task = tasks.create_task(alice, **TaskCreate().load(body))
    conversation = conversations.get_or_create_task_conversation(task.id)
    return str(task.id), str(conversation.id)


def test_a_socket_that_joined_the_task_hears_its_thread(task_thread, alice, bob, carol, socket_client):
    task_id, thread_id = task_thread
    bobs, carols = socket_client(bob), socket_client(carol)
    assert bobs.call("join_task", {"task_id": task_id}, timeout=5) == {"ok": True}
    alices = socket_client(alice)

    message = send(alices, thread_id, "Who calls Acme?")
    assert bobs.wait_for("chat_message") == message

    assert alices.call("typing", {"conversation_id": thread_id, "is_typing": True}, timeout=5) == {"ok": True}
    assert bobs.wait_for("typing") == {"conversation_id": thread_id, "user_id": str(alice.id), "is_typing": True}

    receipt = alices.call("mark_read", {"conversation_id": thread_id, "message_ids": [message["id"]]}, timeout=5)
    assert bobs.wait_for("read_receipt") == receipt

    time.sleep(QUIET)
    assert carols.events("chat_message") == [] and carols.events("typing") == []  # did not join, did not open it


def test_a_reader_who_opens_the_thread_hears_it_from_then_on(client, task_thread, alice, bob, socket_client):
    task_id, thread_id = task_thread
    bobs, alices = socket_client(bob), socket_client(alice)
    response = client.get(f"/api/chat/tasks/{task_id}/conversation", headers=bearer(bob))
    assert response.status_code == 200 and response.get_json()["id"] == thread_id

    message = send(alices, thread_id, "Bob, can you call them?")
    assert bobs.wait_for("chat_message") == message
    alices.call("typing", {"conversation_id": thread_id, "is_typing": False}, timeout=5)
    assert bobs.wait_for("typing")["is_typing"] is False


def test_the_first_message_in_a_thread_subscribes_its_sender(client, task_thread, alice, bob, socket_client):
    _task_id, thread_id = task_thread
    alices_tab, bobs = socket_client(alice), socket_client(bob)
    response = client.post(
        f"/api/chat/conversations/{thread_id}/messages", json={"content": "Starting the thread"}, headers=bearer(bob)
    )
    assert response.status_code == 201, response.get_json()

    assert bobs.wait_for("chat_message")["content"] == "Starting the thread"  # the sender's own sockets too
    reply = send(alices_tab, thread_id, "Welcome")  # Alice's socket: subscribed by her own message's send
    assert bobs.wait_for("chat_message", lambda data: data["id"] == reply["id"]) == reply
    assert alices_tab.wait_for("chat_message") == reply
