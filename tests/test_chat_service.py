"""Chat's service API (what the Socket.IO handlers call) and task threads."""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack import realtime
from finstack.chat import conversations, messages
from finstack.chat.models import Conversation, ConversationMember, Message
from finstack.core import permissions
from finstack.core.events import user_room
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tasks.models import Task
from finstack.users import service as users

FUTURE = "2030-06-01T09:00:00+00:00"


@pytest.fixture
def api(client, auth_headers):
    def call(user, method, path, **kwargs):
        return client.open(path, method=method, headers=auth_headers(user), **kwargs)

    return call


@pytest.fixture
def emitted(deliveries, monkeypatch):
    """What is pushed after commit (the `deliveries` fixture); sockets are not moved between rooms."""
    monkeypatch.setattr(realtime, "join_user", lambda user_id, rooms: None)
    monkeypatch.setattr(realtime, "leave_user", lambda user_id, rooms: None)
    return deliveries


@pytest.fixture
def alice(make_user):
    return make_user()


@pytest.fixture
def bob(make_user):
    return make_user()


@pytest.fixture
def carol(make_user):
    return make_user()


def stored_messages(conversation_id=None):
    with Session(db.engine) as session:
        query = sa.select(Message.content).order_by(Message.created_at)
        if conversation_id is not None:
            query = query.where(Message.conversation_id == conversation_id)
        return list(session.scalars(query))


def create_task(api, user):
    response = api(
        user, "POST", "/api/tasks", json={"entity_name": "Acme Ltd", "task_type": "Call", "task_time": FUTURE}
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


# -- the service API the socket handlers use ----------------------------------------------------------------------


def test_conversation_ids_for_lists_direct_and_group_rooms(app, alice, bob, carol, api):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    team, _ = conversations.create_conversation(alice, participant_ids=[bob.id, carol.id], is_group=True, name="Team")
    conversations.create_conversation(bob, participant_ids=[carol.id])
    thread = conversations.get_or_create_task_conversation(uuid.UUID(create_task(api, alice)))
    messages.send_message(alice, thread.id, "in the task thread")  # touching a thread does not make it a room

    assert sorted(conversations.conversation_ids_for(alice)) == sorted([direct.id, team.id])
    assert all(isinstance(value, uuid.UUID) for value in conversations.conversation_ids_for(alice))
    assert len(conversations.conversation_ids_for(bob)) == 3
    assert sorted(conversations.member_ids(team.id)) == sorted([alice.id, bob.id, carol.id])
    assert conversations.member_ids(uuid.uuid4()) == []


def test_require_member(app, alice, bob, carol):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    assert conversations.require_member(bob, direct.id).id == direct.id
    for conversation_id in (direct.id, uuid.uuid4()):
        with pytest.raises(ApiError) as refused:
            conversations.require_member(carol, conversation_id)
        assert refused.value.status == 404


def test_send_message_stores_then_emits_once(app, alice, bob, emitted):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    emitted.clear()

    message, created = messages.send_message(alice, direct.id, "hello", client_id="c-1")
    assert created is True and isinstance(message, Message)
    payload = messages.message_out(message)
    assert payload["conversation_id"] == str(direct.id) and payload["client_id"] == "c-1"
    assert payload["sender_id"] == str(alice.id) and payload["content"] == "hello"
    members = {user_room(alice.id), user_room(bob.id)}
    pushed = {event: (body, set(rooms)) for event, body, rooms in emitted}
    assert len(emitted) == 2 and pushed["chat_message"] == (payload, members | {f"conversation:{direct.id}"})
    assert pushed["notification"][1] == {user_room(bob.id)}  # bob has no socket: a DM notifies him

    again, created = messages.send_message(alice, direct.id, "hello (retried)", client_id="c-1")
    assert created is False and again.id == message.id and again.content == "hello"
    assert len(emitted) == 2
    assert stored_messages(direct.id) == ["hello"]


@pytest.mark.parametrize("content", ["", "   ", "x" * 5001, None])
def test_send_message_refuses_bad_content_and_announces_nothing(app, alice, bob, emitted, content):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    emitted.clear()
    with pytest.raises(ApiError) as refused:
        messages.send_message(alice, direct.id, content, client_id="c-2")
    assert refused.value.status == 400 and "content" in refused.value.details
    assert emitted == [] and stored_messages() == []


def test_non_member_cannot_send_and_nothing_is_stored_or_emitted(app, alice, bob, carol, emitted):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    emitted.clear()
    with pytest.raises(ApiError) as refused:
        messages.send_message(carol, direct.id, "intrusion", client_id="c-3")
    assert refused.value.status == 404
    with pytest.raises(ApiError):
        messages.mark_read(carol, direct.id)
    assert emitted == [] and stored_messages() == []


def test_mark_read_payload_and_event(app, alice, bob, emitted):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    first, _ = messages.send_message(bob, direct.id, "one")
    second, _ = messages.send_message(bob, direct.id, "two")
    first_id, second_id = str(first.id), str(second.id)
    emitted.clear()

    payload = messages.mark_read(alice, direct.id, [first.id])
    assert set(payload) == {"conversation_id", "user_id", "message_ids", "last_read_message_id", "read_at"}
    assert payload["conversation_id"] == str(direct.id) and payload["user_id"] == str(alice.id)
    assert payload["message_ids"] == [first_id] and payload["last_read_message_id"] == first_id
    assert payload["read_at"].endswith("+00:00")
    rooms = {user_room(alice.id), user_room(bob.id), f"conversation:{direct.id}"}
    assert [(event, body, set(to)) for event, body, to in emitted] == [("read_receipt", payload, rooms)]

    everything = messages.mark_read(alice, direct.id)
    assert everything["message_ids"] == [] and everything["last_read_message_id"] == second_id
    assert conversations.conversation_view(alice, direct.id).unread_count == 0


def test_message_out_is_json_ready(app, alice, bob):
    direct, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    message, _ = messages.send_message(alice, direct.id, "dump me")
    dumped = messages.message_out(message)
    assert dumped["id"] == str(message.id)
    assert dumped["created_at"] == message.created_at.isoformat()
    assert dumped["attachment"] is None and dumped["message_type"] == "text" and dumped["is_pinned"] is False


# -- task threads -------------------------------------------------------------------------------------------------


def test_each_task_has_one_thread_created_on_first_use(api, alice, bob):
    task_id = create_task(api, alice)
    first = api(bob, "GET", f"/api/chat/tasks/{task_id}/conversation")
    assert first.status_code == 200
    body = first.json
    assert body["kind"] == "task" and body["task_id"] == task_id
    assert body["participants"] == [] and body["participant_ids"] == []
    assert body["created_by"] == str(alice.id)
    assert api(alice, "GET", f"/api/chat/tasks/{task_id}/conversation").json["id"] == body["id"]
    assert conversations.get_or_create_task_conversation(uuid.UUID(task_id)).id == uuid.UUID(body["id"])
    with Session(db.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 1

    missing = api(bob, "GET", f"/api/chat/tasks/{uuid.uuid4()}/conversation")
    assert missing.status_code == 404 and missing.json["error"] == "Task not found"


def test_whoever_reads_the_task_chats_in_its_thread(api, alice, bob, carol, make_user, emitted):
    task_id = create_task(api, alice)
    conversation_id = api(alice, "GET", f"/api/chat/tasks/{task_id}/conversation").json["id"]
    base = f"/api/chat/conversations/{conversation_id}"
    emitted.clear()

    posted = api(carol, "POST", f"{base}/messages", json={"content": "Client called back", "client_id": "t-1"})
    assert posted.status_code == 201
    assert emitted == [("chat_message", posted.json, [f"task:{task_id}"])]  # the thread is live in the task's room
    api(bob, "POST", f"{base}/messages", json={"content": "Noted"})
    listing = api(alice, "GET", f"{base}/messages").json
    assert [m["content"] for m in listing["items"]] == ["Client called back", "Noted"]

    # Unread and pins work per user through a state row; no row grants access.
    thread = api(alice, "GET", f"/api/chat/tasks/{task_id}/conversation").json
    assert thread["unread_count"] == 2 and thread["is_pinned"] is False
    assert api(alice, "POST", f"{base}/read").json["unread_count"] == 0
    assert api(alice, "POST", f"{base}/pin").json["is_pinned"] is True
    thread = api(alice, "GET", f"/api/chat/tasks/{task_id}/conversation").json
    assert thread["unread_count"] == 0 and thread["is_pinned"] is True
    assert api(bob, "GET", f"/api/chat/tasks/{task_id}/conversation").json["unread_count"] == 1

    # Threads are not in the conversation list nor in the global search; a scoped search reaches them.
    assert api(alice, "GET", "/api/chat/conversations").json["items"] == []
    assert api(alice, "GET", "/api/chat/search?q=client").json["items"] == []
    scoped = api(alice, "GET", f"/api/chat/search?q=client&conversation_id={conversation_id}").json
    assert [hit["conversation"]["task_id"] for hit in scoped["items"]] == [task_id]

    assert api(alice, "PATCH", base, json={"name": "Renamed"}).status_code == 400

    # The thread's members are the task's readers: every active user today.
    gone = make_user()
    users.set_active(gone, False)
    assert sorted(conversations.member_ids(uuid.UUID(conversation_id))) == sorted([alice.id, bob.id, carol.id])


def test_thread_access_follows_can_read_task(api, alice, bob, monkeypatch):
    task_id = create_task(api, alice)
    conversation_id = api(alice, "GET", f"/api/chat/tasks/{task_id}/conversation").json["id"]
    monkeypatch.setattr(permissions, "can_read_task", lambda user, task: user.id == alice.id)

    assert api(bob, "GET", f"/api/chat/tasks/{task_id}/conversation").status_code == 404
    assert api(bob, "GET", f"/api/chat/conversations/{conversation_id}").status_code == 404
    refused = api(bob, "POST", f"/api/chat/conversations/{conversation_id}/messages", json={"content": "hi"})
    assert refused.status_code == 404
    assert api(alice, "POST", f"/api/chat/conversations/{conversation_id}/messages", json={"content": "ok"}).json
    assert stored_messages() == ["ok"]
    with Session(db.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ConversationMember)) == 0


def test_can_read_task_is_every_active_user(app, alice, api):
    task_id = create_task(api, alice)
    task = db.session.get(Task, uuid.UUID(task_id))
    assert permissions.can_read_task(alice, task)
    users.set_active(alice, False)
    assert not permissions.can_read_task(alice, task)
