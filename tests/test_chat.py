"""Chat REST: conversations (DM, group), members, messages and cursors, idempotent sends, reads, pins, search."""

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finstack import realtime
from finstack.audit.models import AuditLog
from finstack.chat import conversations, messages
from finstack.chat.models import Conversation, ConversationMember, Message, direct_key_for
from finstack.extensions import db
from finstack.users import service as users

CONVERSATION_FIELDS = {
    "id",
    "kind",
    "is_group",
    "name",
    "task_id",
    "ticket_id",
    "created_by",
    "created_at",
    "updated_at",
    "last_message_at",
    "participant_ids",
    "participants",
    "last_message",
    "unread_count",
    "is_pinned",
    "last_read_message_id",
}
MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "sender_id",
    "sender",
    "content",
    "message_type",
    "attachment_id",
    "attachment",
    "client_id",
    "is_pinned",
    "pinned_by",
    "pinned_at",
    "internal",
    "is_ai",
    "created_at",
}


# -- helpers ------------------------------------------------------------------------------------------------------


@pytest.fixture
def api(client, auth_headers):
    """`api(user, method, path, **kwargs)`: a request to /api/chat<path> as `user`."""

    def call(user, method, path, **kwargs):
        return client.open(f"/api/chat{path}", method=method, headers=auth_headers(user), **kwargs)

    return call


@pytest.fixture
def alice(make_user):
    return make_user(full_name="Alice Archer")


@pytest.fixture
def bob(make_user):
    return make_user(full_name="Bob Baker")


@pytest.fixture
def carol(make_user):
    return make_user(full_name="Carol Cole")


@pytest.fixture
def dave(make_user):
    return make_user(full_name="Dave Dunn")


@pytest.fixture
def emitted(deliveries):
    """What is pushed after commit, as (event, payload, rooms) (the `deliveries` fixture)."""
    return deliveries


def per_room(emitted, kind):
    """`(payload, room)` for each room an event of `kind` reached."""
    return [(payload, room) for event, payload, rooms in emitted if event == kind for room in rooms]


@pytest.fixture
def moved(monkeypatch):
    """Room changes asked of finstack.realtime as (op, user_id, rooms)."""
    calls = []
    monkeypatch.setattr(realtime, "join_user", lambda user_id, rooms: calls.append(("join", user_id, list(rooms))))
    monkeypatch.setattr(realtime, "leave_user", lambda user_id, rooms: calls.append(("leave", user_id, list(rooms))))
    return calls


def ids(*users):
    return [str(user.id) for user in users]


def dm(api, user, other):
    response = api(user, "POST", "/conversations", json={"participant_ids": [str(other.id)]})
    assert response.status_code in (200, 201), response.json
    return response.json["id"]


def group(api, user, *others, name="Project X"):
    response = api(
        user, "POST", "/conversations", json={"participant_ids": ids(*others), "is_group": True, "name": name}
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def send(api, user, conversation_id, content="hello", **fields):
    response = api(user, "POST", f"/conversations/{conversation_id}/messages", json={"content": content, **fields})
    assert response.status_code in (200, 201), response.json
    return response.json


def message_count(conversation_id=None):
    with Session(db.engine) as session:
        query = sa.select(sa.func.count()).select_from(Message)
        if conversation_id is not None:
            query = query.where(Message.conversation_id == uuid.UUID(str(conversation_id)))
        return session.scalar(query)


def member_rows(conversation_id):
    with Session(db.engine) as session:
        return set(
            session.scalars(
                sa.select(ConversationMember.user_id).where(
                    ConversationMember.conversation_id == uuid.UUID(str(conversation_id))
                )
            )
        )


def conversation_in_list(api, user, conversation_id):
    items = api(user, "GET", "/conversations?per_page=100").json["items"]
    return next((item for item in items if item["id"] == conversation_id), None)


# -- direct messages ----------------------------------------------------------------------------------------------


def test_dm_is_created_once_per_pair_whoever_starts_it(api, alice, bob, emitted, moved):
    first = api(alice, "POST", "/conversations", json={"participant_ids": [str(bob.id)], "is_group": False})
    assert first.status_code == 201
    body = first.json
    assert set(body) == CONVERSATION_FIELDS
    assert body["kind"] == "direct" and body["is_group"] is False and body["name"] is None
    assert set(body["participant_ids"]) == set(ids(alice, bob))
    assert {p["full_name"] for p in body["participants"]} == {"Alice Archer", "Bob Baker"}
    assert body["unread_count"] == 0 and body["last_message"] is None and body["is_pinned"] is False

    again = api(alice, "POST", "/conversations", json={"participant_ids": [str(bob.id)], "name": None})
    assert again.status_code == 200 and again.json["id"] == body["id"]
    reverse = api(bob, "POST", "/conversations", json={"participant_ids": [str(alice.id), str(bob.id)]})
    assert reverse.status_code == 200 and reverse.json["id"] == body["id"]
    with Session(db.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 1

    # Both members heard about the new conversation once, and their sockets were put in its room.
    created = per_room(emitted, "conversation_updated")
    assert {room for _, room in created} == {f"user:{alice.id}", f"user:{bob.id}"}
    assert all(payload["action"] == "created" and payload["conversation_id"] == body["id"] for payload, _ in created)
    assert sorted(moved) == sorted(("join", user.id, [f"conversation:{body['id']}"]) for user in (alice, bob))


def test_the_database_allows_one_dm_per_pair(app, alice, bob):
    key = direct_key_for(bob.id, alice.id)
    assert key == direct_key_for(alice.id, bob.id)
    with Session(db.engine) as session:
        session.add(Conversation(kind="direct", direct_key=key, created_by=alice.id))
        session.commit()
        session.add(Conversation(kind="direct", direct_key=key, created_by=bob.id))
        with pytest.raises(IntegrityError):
            session.commit()


def test_dm_created_concurrently_returns_the_winner(api, alice, bob, monkeypatch):
    winner = dm(api, bob, alice)
    real = conversations._direct_conversation
    calls = []

    def stale_then_real(key):  # the first look happened before the other side committed
        calls.append(key)
        return None if len(calls) == 1 else real(key)

    monkeypatch.setattr(conversations, "_direct_conversation", stale_then_real)
    response = api(alice, "POST", "/conversations", json={"participant_ids": [str(bob.id)]})
    assert response.status_code == 200
    assert response.json["id"] == winner
    assert len(calls) == 2


@pytest.mark.parametrize(
    "body_of",
    [
        lambda me, others: {"participant_ids": [str(me.id)]},
        lambda me, others: {"participant_ids": ids(*others)},
        lambda me, others: {"participant_ids": [str(uuid.uuid4())]},
        lambda me, others: {"participant_ids": ids(others[0]), "name": "A DM has no name"},
        lambda me, others: {"participant_ids": []},
        lambda me, others: {"participant_ids": ids(others[0]), "colour": "blue"},
        lambda me, others: {"participant_ids": ["not-a-uuid"]},
    ],
    ids=["only-me", "two-others", "unknown-user", "named", "empty", "unknown-field", "bad-id"],
)
def test_dm_validation(api, alice, bob, carol, body_of):
    response = api(alice, "POST", "/conversations", json=body_of(alice, [bob, carol]))
    assert response.status_code == 400
    assert response.json["error"] == "Validation failed"
    with Session(db.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 0


def test_no_dm_with_a_deactivated_user(api, alice, bob):
    users.set_active(bob, False)
    response = api(alice, "POST", "/conversations", json={"participant_ids": [str(bob.id)]})
    assert response.status_code == 400
    assert "participant_ids" in response.json["details"]


# -- groups -------------------------------------------------------------------------------------------------------


def test_group_needs_a_name_and_three_people(api, alice, bob, carol):
    no_name = api(alice, "POST", "/conversations", json={"participant_ids": ids(bob, carol), "is_group": True})
    assert no_name.status_code == 400 and "name" in no_name.json["details"]
    blank = api(
        alice, "POST", "/conversations", json={"participant_ids": ids(bob, carol), "is_group": True, "name": "  "}
    )
    assert blank.status_code == 400 and "name" in blank.json["details"]
    too_small = api(
        alice, "POST", "/conversations", json={"participant_ids": ids(alice, bob), "is_group": True, "name": "Two"}
    )
    assert too_small.status_code == 400 and "participant_ids" in too_small.json["details"]

    created = api(
        alice,
        "POST",
        "/conversations",
        json={"participant_ids": ids(bob, carol, bob), "is_group": True, "name": "  Q3 close  "},
    )
    assert created.status_code == 201
    body = created.json
    assert body["kind"] == "group" and body["is_group"] is True and body["name"] == "Q3 close"
    assert body["created_by"] == str(alice.id)
    assert sorted(body["participant_ids"]) == sorted(ids(alice, bob, carol))
    # A second group with the same people is a new group (only DMs are one per pair).
    assert group(api, alice, bob, carol) != body["id"]
    with Session(db.engine) as session:
        entry = session.scalar(sa.select(AuditLog).where(AuditLog.action == "conversation.create").limit(1))
        assert entry.actor_id == alice.id


def test_members_add_remove_and_rename_a_group(api, alice, bob, carol, dave, emitted, moved):
    conversation_id = group(api, alice, bob, carol)
    emitted.clear()
    moved.clear()

    # Any member (not only the creator) renames and adds.
    response = api(
        bob, "PATCH", f"/conversations/{conversation_id}", json={"name": "Renamed", "add_participant_ids": ids(dave)}
    )
    assert response.status_code == 200
    assert response.json["name"] == "Renamed"
    assert set(response.json["participant_ids"]) == set(ids(alice, bob, carol, dave))
    assert api(dave, "GET", f"/conversations/{conversation_id}").status_code == 200

    updates = per_room(emitted, "conversation_updated")
    assert {room for _, room in updates} == {f"user:{user.id}" for user in (alice, bob, carol, dave)}
    payload = updates[0][0]
    assert payload["action"] == "updated" and payload["name"] == "Renamed"
    assert payload["added_user_ids"] == ids(dave) and payload["removed_user_ids"] == []
    assert payload["actor_id"] == str(bob.id)
    assert set(payload["member_ids"]) == set(ids(alice, bob, carol, dave))
    assert moved == [("join", dave.id, [f"conversation:{conversation_id}"])]

    emitted.clear()
    moved.clear()
    response = api(carol, "PATCH", f"/conversations/{conversation_id}", json={"remove_participant_ids": ids(dave)})
    assert response.status_code == 200
    assert set(response.json["participant_ids"]) == set(ids(alice, bob, carol))
    # The removed member is told too (so their client drops the conversation), then loses access.
    rooms = {room for _, room in per_room(emitted, "conversation_updated")}
    assert f"user:{dave.id}" in rooms
    assert moved == [("leave", dave.id, [f"conversation:{conversation_id}"])]
    assert api(dave, "GET", f"/conversations/{conversation_id}").status_code == 404
    assert api(dave, "GET", f"/conversations/{conversation_id}/messages").status_code == 404

    # Members may leave (remove themselves).
    response = api(bob, "PATCH", f"/conversations/{conversation_id}", json={"remove_participant_ids": ids(bob)})
    assert response.status_code == 200
    assert set(response.json["participant_ids"]) == set(ids(alice, carol))
    assert member_rows(conversation_id) == {alice.id, carol.id}
    assert api(bob, "GET", f"/conversations/{conversation_id}").status_code == 404


def test_group_rules_on_update(api, alice, bob, carol, dave, make_user):
    conversation_id = group(api, alice, bob, carol)
    path = f"/conversations/{conversation_id}"

    creator = api(bob, "PATCH", path, json={"remove_participant_ids": ids(alice)})
    assert creator.status_code == 400 and "remove_participant_ids" in creator.json["details"]
    stranger = api(bob, "PATCH", path, json={"remove_participant_ids": ids(dave)})
    assert stranger.status_code == 400
    both = api(bob, "PATCH", path, json={"add_participant_ids": ids(dave), "remove_participant_ids": ids(dave)})
    assert both.status_code == 400
    empty = api(bob, "PATCH", path, json={})
    assert empty.status_code == 400
    inactive = make_user()
    users.set_active(inactive, False)
    assert api(bob, "PATCH", path, json={"add_participant_ids": ids(inactive)}).status_code == 400
    assert api(bob, "PATCH", path, json={"add_participant_ids": [str(uuid.uuid4())]}).status_code == 400

    # Down to two members is fine; below that is not.
    assert api(alice, "PATCH", path, json={"remove_participant_ids": ids(carol)}).status_code == 200
    too_few = api(alice, "PATCH", path, json={"remove_participant_ids": ids(bob)})
    assert too_few.status_code == 400
    assert member_rows(conversation_id) == {alice.id, bob.id}

    # Non-members cannot change it (and learn nothing about it).
    outsider = api(dave, "PATCH", path, json={"name": "Mine now"})
    assert outsider.status_code == 404
    assert api(alice, "GET", path).json["name"] == "Project X"


def test_dms_cannot_be_changed(api, alice, bob, carol):
    conversation_id = dm(api, alice, bob)
    response = api(alice, "PATCH", f"/conversations/{conversation_id}", json={"add_participant_ids": ids(carol)})
    assert response.status_code == 400
    assert member_rows(conversation_id) == {alice.id, bob.id}


def test_non_members_get_404_everywhere_and_nothing_is_stored(api, alice, bob, carol):
    conversation_id = dm(api, alice, bob)
    message = send(api, alice, conversation_id, "private")
    base = f"/conversations/{conversation_id}"
    attempts = [
        ("GET", base, {}),
        ("GET", f"{base}/messages", {}),
        ("POST", f"{base}/messages", {"json": {"content": "let me in", "client_id": "x1"}}),
        ("POST", f"{base}/read", {"json": {}}),
        ("POST", f"{base}/pin", {}),
        ("DELETE", f"{base}/pin", {}),
        ("POST", f"{base}/messages/{message['id']}/pin", {}),
        ("GET", f"{base}/pinned-messages", {}),
        ("GET", f"/search?q=private&conversation_id={conversation_id}", {}),
        ("GET", f"/conversations/{uuid.uuid4()}", {}),
    ]
    for method, path, kwargs in attempts:
        response = api(carol, method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.json)
        assert response.json["error"] in ("Conversation not found",), (method, path)
    assert message_count(conversation_id) == 1
    assert member_rows(conversation_id) == {alice.id, bob.id}
    with Session(db.engine) as session:
        assert session.scalar(sa.select(Message.is_pinned).where(Message.id == uuid.UUID(message["id"]))) is False
    assert api(carol, "GET", "/search?q=private").json["items"] == []


def test_chat_needs_a_token(client, alice):
    assert client.get("/api/chat/conversations").status_code == 401
    assert client.post("/api/chat/conversations", json={"participant_ids": [str(alice.id)]}).status_code == 401


# -- listing and unread counts ------------------------------------------------------------------------------------


def test_list_shows_my_conversations_with_unread_counts_and_last_message(api, alice, bob, carol, dave):
    with_bob = dm(api, alice, bob)
    team = group(api, alice, bob, carol)
    not_mine = dm(api, bob, dave)
    send(api, bob, not_mine, "not for alice")

    for text in ("one", "two", "three"):
        send(api, bob, with_bob, text)
    send(api, alice, with_bob, "my own reply")  # my own messages are never unread, and sending reads the rest
    send(api, bob, with_bob, "after your reply")
    send(api, carol, team, "group 1")
    last = send(api, bob, team, "group 2")

    listing = api(alice, "GET", "/conversations")
    assert listing.status_code == 200
    assert listing.json["pagination"] == {
        "page": 1, "per_page": 20, "total": 2, "pages": 1, "total_exact": True, "next_cursor": None
    }
    items = {item["id"]: item for item in listing.json["items"]}
    assert set(items) == {with_bob, team}
    assert items[with_bob]["unread_count"] == 1
    assert items[with_bob]["last_message"]["content"] == "after your reply"
    assert items[team]["unread_count"] == 2
    assert items[team]["last_message"]["id"] == last["id"]
    assert set(items[team]["last_message"]) == MESSAGE_FIELDS
    # Latest activity first.
    assert [item["id"] for item in listing.json["items"]] == [team, with_bob]

    assert conversation_in_list(api, carol, team)["unread_count"] == 1  # bob's "group 2"
    assert conversation_in_list(api, bob, team)["unread_count"] == 0  # sending read "group 1"
    assert api(alice, "GET", "/conversations?kind=direct").json["pagination"]["total"] == 1
    assert api(alice, "GET", "/conversations?kind=task").status_code == 400
    assert api(alice, "GET", "/conversations?per_page=1&page=2").json["items"][0]["id"] == with_bob


def test_read_marks_everything_or_up_to_a_message(api, alice, bob, carol, emitted):
    conversation_id = dm(api, alice, bob)
    sent = [send(api, bob, conversation_id, f"m{n}") for n in range(4)]
    assert api(alice, "GET", f"/conversations/{conversation_id}").json["unread_count"] == 4

    emitted.clear()
    partial = api(alice, "POST", f"/conversations/{conversation_id}/read", json={"message_ids": [sent[1]["id"]]})
    assert partial.status_code == 200
    assert partial.json["unread_count"] == 2
    assert partial.json["last_read_message_id"] == sent[1]["id"]
    assert partial.json["message_ids"] == [sent[1]["id"]]
    assert partial.json["user_id"] == str(alice.id) and partial.json["conversation_id"] == conversation_id
    (event, payload, rooms), *more = emitted
    assert event == "read_receipt" and more == []
    assert set(rooms) == {f"user:{alice.id}", f"user:{bob.id}", f"conversation:{conversation_id}"}
    assert payload == {key: value for key, value in partial.json.items() if key != "unread_count"}

    # The newest of the given ids counts; an older one never moves the marker back.
    api(alice, "POST", f"/conversations/{conversation_id}/read", json={"message_ids": [sent[2]["id"], sent[0]["id"]]})
    back = api(alice, "POST", f"/conversations/{conversation_id}/read", json={"message_ids": [sent[0]["id"]]})
    assert back.json["last_read_message_id"] == sent[2]["id"] and back.json["unread_count"] == 1

    everything = api(alice, "POST", f"/conversations/{conversation_id}/read")
    assert everything.status_code == 200
    assert everything.json["unread_count"] == 0
    assert everything.json["last_read_message_id"] == sent[3]["id"]
    assert api(alice, "GET", f"/conversations/{conversation_id}").json["last_read_message_id"] == sent[3]["id"]

    foreign = send(api, bob, group(api, bob, alice, carol), "elsewhere")
    wrong = api(alice, "POST", f"/conversations/{conversation_id}/read", json={"message_ids": [foreign["id"]]})
    assert wrong.status_code == 400 and "message_ids" in wrong.json["details"]


def test_unread_counts_cost_a_constant_number_of_queries(api, client, auth_headers, alice, make_user):
    headers = auth_headers(alice)  # built outside the count: it reads alice's id

    def statements_for_listing():
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = client.get("/api/chat/conversations?per_page=50", headers=headers)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return response.json, len(seen)

    def conversation_with_traffic():
        other, third = make_user(), make_user()
        conversation_id = group(api, alice, other, third)
        send(api, other, conversation_id, "hi")
        send(api, third, conversation_id, "there")
        return conversation_id

    conversation_with_traffic()
    body, one = statements_for_listing()
    assert [item["unread_count"] for item in body["items"]] == [2]
    for _ in range(9):
        conversation_with_traffic()
    body, ten = statements_for_listing()
    assert len(body["items"]) == 10
    assert all(item["unread_count"] == 2 and len(item["participants"]) == 3 for item in body["items"])
    assert all(item["last_message"]["content"] == "there" for item in body["items"])
    assert ten == one, f"1 conversation: {one} statements, 10 conversations: {ten}"
    # the token-and-user check, then the page (its bounded count a column), its members; on PostgreSQL the planner's
    # estimate is asked first
    assert one == (4 if db.engine.dialect.name == "postgresql" else 3), one


# -- messages -----------------------------------------------------------------------------------------------------


def test_send_and_read_messages(api, alice, bob, emitted):
    conversation_id = dm(api, alice, bob)
    emitted.clear()
    response = api(alice, "POST", f"/conversations/{conversation_id}/messages", json={"content": "Invoice #42?"})
    assert response.status_code == 201
    message = response.json
    assert set(message) == MESSAGE_FIELDS
    assert message["content"] == "Invoice #42?" and message["message_type"] == "text"
    assert message["sender"]["full_name"] == "Alice Archer" and message["client_id"] is None
    assert datetime.fromisoformat(message["created_at"]).utcoffset().total_seconds() == 0

    # bob has no socket: he is notified too (tests/test_noise.py)
    members = {f"user:{alice.id}", f"user:{bob.id}"}
    notified, pushed = emitted
    assert pushed[:2] == ("chat_message", message) and set(pushed[2]) == members | {f"conversation:{conversation_id}"}
    assert notified[0] == "notification" and notified[2] == [f"user:{bob.id}"]
    listing = api(bob, "GET", f"/conversations/{conversation_id}/messages")
    assert listing.json["items"] == [message]
    assert listing.json["cursor"] == {
        "limit": 50,
        "has_more": False,
        "oldest_id": message["id"],
        "newest_id": message["id"],
    }
    conversation = api(bob, "GET", f"/conversations/{conversation_id}").json
    assert conversation["last_message_at"] == message["created_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "   \n"}, "content"),
        ({"content": "x" * 5001}, "content"),
        ({"content": "ok", "client_id": ""}, "client_id"),
        ({"content": "ok", "client_id": "c" * 65}, "client_id"),
        ({"content": "ok", "sender_id": "someone"}, "sender_id"),
        ({"content": "ok", "message_type": "attachment"}, "attachment_id"),
        ({"content": "ok", "attachment_id": str(uuid.uuid4())}, "attachment_id"),
    ],
)
def test_message_validation(api, alice, bob, body, field):
    conversation_id = dm(api, alice, bob)
    response = api(alice, "POST", f"/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 400
    assert field in response.json["details"]
    assert message_count() == 0


def test_longest_message_is_accepted(api, alice, bob):
    conversation_id = dm(api, alice, bob)
    assert len(send(api, alice, conversation_id, "é" * 5000)["content"]) == 5000


def test_a_retried_send_is_stored_once(api, alice, bob, carol, emitted):
    conversation_id = dm(api, alice, bob)
    emitted.clear()
    path = f"/conversations/{conversation_id}/messages"
    first = api(alice, "POST", path, json={"content": "pay run approved", "client_id": "tab1-0001"})
    assert first.status_code == 201
    retry = api(alice, "POST", path, json={"content": "pay run approved", "client_id": "tab1-0001"})
    assert retry.status_code == 200
    assert retry.json == first.json
    assert first.json["client_id"] == "tab1-0001"
    assert message_count(conversation_id) == 1
    assert [event for event, _, _ in emitted] == ["notification", "chat_message"]  # bob, offline, notified once

    # client_id is per sender: bob may use the same string.
    assert api(bob, "POST", path, json={"content": "ack", "client_id": "tab1-0001"}).status_code == 201
    # ...but alice may not reuse hers in another conversation.
    other = group(api, alice, bob, carol)
    reused = api(alice, "POST", f"/conversations/{other}/messages", json={"content": "x", "client_id": "tab1-0001"})
    assert reused.status_code == 409
    assert message_count() == 2


def test_a_send_racing_its_retry_returns_the_original(app, alice, bob, emitted, monkeypatch):
    conversation, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    original, created = messages.send_message(alice, conversation.id, "once", client_id="race-1")
    assert created
    emitted.clear()

    # The retry's look-up ran before the first copy committed; the unique constraint then decides.
    real = messages._by_client_id
    calls = []

    def stale_then_real(sender_id, client_id):
        calls.append(client_id)
        return None if len(calls) == 1 else real(sender_id, client_id)

    monkeypatch.setattr(messages, "_by_client_id", stale_then_real)
    message, created = messages.send_message(alice, conversation.id, "once", client_id="race-1")
    assert created is False
    assert message.id == original.id
    assert len(calls) == 2
    assert emitted == []
    assert message_count(conversation.id) == 1


def test_cursors_page_without_gaps_or_duplicates(api, app, alice, bob):
    conversation_id = dm(api, alice, bob)
    conversation = db.session.get(Conversation, uuid.UUID(conversation_id))
    sent = [messages.send_message(alice, conversation.id, f"n{n:02d}")[0].id for n in range(12)]
    # Eight more sharing one timestamp: the id breaks the tie.
    same_time = datetime(2031, 1, 1, tzinfo=UTC)
    tied = sorted(uuid.uuid4() for _ in range(8))
    db.session.add_all(
        Message(id=message_id, conversation_id=conversation.id, sender_id=bob.id, content="tie", created_at=same_time)
        for message_id in reversed(tied)
    )
    db.session.commit()
    expected = [str(message_id) for message_id in [*sent, *tied]]
    path = f"/conversations/{conversation_id}/messages"

    latest = api(bob, "GET", f"{path}?limit=5").json
    assert [m["id"] for m in latest["items"]] == expected[-5:]
    assert latest["cursor"] == {"limit": 5, "has_more": True, "oldest_id": expected[-5], "newest_id": expected[-1]}
    assert "pagination" not in latest  # no page numbers it could not serve

    # Backwards with `before`, each page oldest → newest.
    pages, before = [], None
    while True:
        query = f"?per_page=3&before={before}" if before else "?per_page=3"
        body = api(bob, "GET", path + query).json
        pages.insert(0, [m["id"] for m in body["items"]])
        if not body["cursor"]["has_more"]:
            break
        before = body["cursor"]["oldest_id"]
    assert [message_id for page in pages for message_id in page] == expected
    assert len(pages) == 7  # 20 messages by 3: the last page read holds the 2 oldest, and says nothing more

    # Forwards with `after` (catch-up), from the first message.
    seen, after = [expected[0]], expected[0]
    while True:
        body = api(bob, "GET", f"{path}?limit=4&after={after}").json
        seen += [m["id"] for m in body["items"]]
        if not body["cursor"]["has_more"]:
            break
        after = body["cursor"]["newest_id"]
    assert seen == expected

    between = api(bob, "GET", f"{path}?after={expected[3]}&before={expected[9]}&limit=100").json
    assert [m["id"] for m in between["items"]] == expected[4:9]
    caught_up = api(bob, "GET", f"{path}?after={expected[-1]}").json
    assert caught_up == {"items": [], "cursor": {"limit": 50, "has_more": False, "oldest_id": None, "newest_id": None}}


def test_cursor_validation(api, alice, bob, carol):
    conversation_id = dm(api, alice, bob)
    send(api, alice, conversation_id)
    elsewhere = send(api, alice, dm(api, alice, carol), "other conversation")
    path = f"/conversations/{conversation_id}/messages"
    assert api(alice, "GET", f"{path}?before={elsewhere['id']}").status_code == 400
    assert api(alice, "GET", f"{path}?after={uuid.uuid4()}").status_code == 400
    assert api(alice, "GET", f"{path}?limit=101").status_code == 400
    assert api(alice, "GET", f"{path}?limit=0").status_code == 400
    assert api(alice, "GET", f"{path}?limit=5&per_page=6").status_code == 400
    assert api(alice, "GET", f"{path}?page=2").status_code == 400


def test_created_at_follows_commit_order_even_if_the_clock_stalls(app, alice, bob, monkeypatch):
    conversation, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    frozen = datetime(2030, 5, 5, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(messages, "utcnow", lambda: frozen)
    times = [messages.send_message(alice, conversation.id, f"m{n}")[0].created_at for n in range(3)]
    assert times[0] == frozen
    assert times[0] < times[1] < times[2]


# -- pins ---------------------------------------------------------------------------------------------------------


def test_pinning_a_conversation_is_personal(api, alice, bob, carol):
    older = dm(api, alice, bob)
    newer = dm(api, alice, carol)
    send(api, carol, newer)
    assert [item["id"] for item in api(alice, "GET", "/conversations").json["items"]] == [newer, older]

    pinned = api(alice, "POST", f"/conversations/{older}/pin")
    assert pinned.status_code == 200 and pinned.json == {"conversation_id": older, "is_pinned": True}
    assert api(alice, "POST", f"/conversations/{older}/pin").json["is_pinned"] is True  # idempotent
    items = api(alice, "GET", "/conversations").json["items"]
    assert [item["id"] for item in items] == [older, newer]
    assert items[0]["is_pinned"] is True
    assert conversation_in_list(api, bob, older)["is_pinned"] is False

    unpinned = api(alice, "DELETE", f"/conversations/{older}/pin")
    assert unpinned.json == {"conversation_id": older, "is_pinned": False}
    assert [item["id"] for item in api(alice, "GET", "/conversations").json["items"]] == [newer, older]


def test_pinning_a_message_is_shared(api, alice, bob, carol):
    conversation_id = group(api, alice, bob, carol)
    first = send(api, alice, conversation_id, "first")
    second = send(api, bob, conversation_id, "second")
    base = f"/conversations/{conversation_id}"

    response = api(carol, "POST", f"{base}/messages/{first['id']}/pin")
    assert response.status_code == 200
    assert response.json["is_pinned"] is True and response.json["pinned_by"] == str(carol.id)
    assert response.json["pinned_at"] is not None
    api(alice, "POST", f"{base}/messages/{second['id']}/pin")

    pinned = api(bob, "GET", f"{base}/pinned-messages").json
    assert [m["id"] for m in pinned["items"]] == [second["id"], first["id"]]
    assert pinned["pagination"]["total"] == 2

    again = api(alice, "POST", f"{base}/messages/{first['id']}/pin").json
    assert again["pinned_by"] == str(carol.id)  # re-pinning keeps who pinned it first

    unpinned = api(bob, "DELETE", f"{base}/messages/{first['id']}/pin")
    assert unpinned.status_code == 200
    assert unpinned.json["is_pinned"] is False and unpinned.json["pinned_by"] is None
    assert [m["id"] for m in api(alice, "GET", f"{base}/pinned-messages").json["items"]] == [second["id"]]

    other = dm(api, alice, bob)
    assert api(alice, "POST", f"/conversations/{other}/messages/{first['id']}/pin").status_code == 404
    assert api(alice, "POST", f"{base}/messages/{uuid.uuid4()}/pin").status_code == 404


# -- search -------------------------------------------------------------------------------------------------------


def test_search_is_literal_case_insensitive_and_only_in_my_conversations(api, alice, bob, carol, dave):
    mine = dm(api, alice, bob)
    team = group(api, alice, bob, carol)
    theirs = dm(api, carol, dave)
    texts = {
        "pct": send(api, bob, mine, "Fee is 5% of AUM"),
        "under": send(api, bob, mine, "see file_name.pdf"),
        "dot": send(api, carol, team, "v1.2 released"),
        "star": send(api, alice, team, "rated ***** by client"),
        "plain": send(api, alice, mine, "FEE schedule 5 percent"),
        "noise": send(api, bob, mine, "filexname and v1x2 and 50 of AUM"),
    }
    send(api, carol, theirs, "Fee is 5% of AUM too, but private")

    def search(query, user=alice):
        response = api(user, "GET", "/search", query_string={"q": query})
        assert response.status_code == 200, response.json
        return [hit["id"] for hit in response.json["items"]]

    assert search("5%") == [texts["pct"]["id"]]
    assert search("e_n") == [texts["under"]["id"]]
    assert search("1.2") == [texts["dot"]["id"]]
    assert search("**") == [texts["star"]["id"]]
    assert search("fee") == [texts["plain"]["id"], texts["pct"]["id"]]  # newest first, any case
    assert search("private") == []
    assert search("private", user=carol) != []

    hit = api(alice, "GET", "/search?q=released").json
    assert hit["pagination"]["total"] == 1
    item = hit["items"][0]
    brief = {"id": team, "kind": "group", "name": "Project X", "task_id": None, "ticket_id": None}
    assert item["conversation"] == brief
    assert set(item) == MESSAGE_FIELDS | {"conversation"}

    scoped = api(alice, "GET", "/search", query_string={"q": "fee", "conversation_id": team})
    assert scoped.json["items"] == []
    assert api(alice, "GET", "/search").status_code == 400
    assert api(alice, "GET", "/search?q=%20").status_code == 400
    assert api(alice, "GET", "/search?q=x&sort=new").status_code == 400


# -- people -------------------------------------------------------------------------------------------------------


def test_available_users_are_the_other_active_users(api, alice, bob, carol, make_user):
    gone = make_user(full_name="Gone Away")
    users.set_active(gone, False)
    body = api(alice, "GET", "/users/available?per_page=100").json
    listed = {item["id"] for item in body["items"]}
    assert str(alice.id) not in listed and str(gone.id) not in listed
    assert {str(bob.id), str(carol.id)} <= listed
    assert set(body["items"][0]) == {"id", "username", "full_name", "email", "role", "department"}
    assert body["pagination"]["total"] == len(listed)

    found = api(alice, "GET", "/users/available?search=cOLE").json["items"]
    assert [item["id"] for item in found] == [str(carol.id)]
    assert api(alice, "GET", "/users/available?search=%25").json["items"] == []
    assert api(alice, "GET", "/users/available?role=admin").status_code == 400
