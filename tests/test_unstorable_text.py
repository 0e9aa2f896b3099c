"""Text the database cannot store (NUL, lone UTF-16 surrogates) is a 400 wherever it arrives, never a 500.

PostgreSQL is the database that refuses such text (the driver raises), so these tests matter most with
TEST_DATABASE_URL pointing at PostgreSQL; on SQLite they pin the same answers.
"""

import io
import json
import uuid

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from socketio.exceptions import ConnectionError as SocketConnectionError

from finstack.chat import conversations
from finstack.chat.models import Message
from finstack.core.schemas import UNSTORABLE_MESSAGE
from finstack.extensions import db
from finstack.tasks.models import Task

LONE = "\ud800"  # a high surrogate with no low one after it
TASK = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}


def raw_json(value):
    """JSON text as a client sends it: non-ASCII (lone surrogates included) as \\u escapes."""
    return json.dumps(value).encode()


def assert_unstorable(response, field):
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "validation_failed", body
    assert body["details"][field] == [UNSTORABLE_MESSAGE], body


def task_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(Task))


@pytest.fixture
def headers(member, auth_headers):
    return auth_headers(member)


@pytest.fixture
def task(client, headers):
    response = client.post("/api/tasks", json=TASK, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def dm(member, make_user):
    conversation, _ = conversations.create_conversation(member, participant_ids=[make_user().id])
    return str(conversation.id)


# --- JSON bodies ---------------------------------------------------------------------------------------------------

JSON_CASES = {
    "lone surrogate in a task field": ("POST", "/api/tasks", {**TASK, "entity_name": f"Acme{LONE}"}, "entity_name"),
    "lone low surrogate": ("POST", "/api/tasks", {**TASK, "note": "\udc00 note"}, "note"),
    "NUL escape": ("POST", "/api/tasks", {**TASK, "task_type": "Ca\x00ll"}, "task_type"),
    "inside a list": ("POST", "/api/tasks/bulk-status", {"task_ids": [LONE], "status": "closed"}, "task_ids"),
    "in a key": ("POST", "/api/tasks", {**TASK, LONE: 1}, "_schema"),
    "a top-level string": ("POST", "/api/tasks", LONE, "_schema"),
    "login": ("POST", "/api/auth/login", {"username": LONE, "password": PASSWORD}, "username"),
    "register": (
        "POST",
        "/api/auth/register",
        {"username": "fresh", "email": "fresh@example.com", "password": "long-enough", "full_name": LONE},
        "full_name",
    ),
    "profile": ("PUT", "/api/users/me", {"full_name": f"Jo {LONE}"}, "full_name"),
    "task update": ("PUT", "/api/tasks/{task_id}", {"note": LONE}, "note"),
    "comment": ("POST", "/api/tasks/{task_id}/comments", {"content": f"hi {LONE}"}, "content"),
    "chat message": ("POST", "/api/chat/conversations/{dm}/messages", {"content": LONE}, "content"),
    "chat client_id": (
        "POST",
        "/api/chat/conversations/{dm}/messages",
        {"content": "x", "client_id": LONE},
        "client_id",
    ),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_unstorable_text_in_a_json_body_is_400_naming_the_field(client, headers, task, dm, case):
    method, path, body, field = JSON_CASES[case]
    url = path.format(task_id=task["id"], dm=dm)
    response = client.open(url, method=method, data=raw_json(body), content_type="application/json", headers=headers)
    assert_unstorable(response, field)
    assert task_count() == 1
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).json == task


def test_a_surrogate_pair_is_ordinary_text_and_is_stored(client, headers):
    """Only *unpaired* surrogates are refused: an escaped pair decodes to one character (here an emoji)."""
    response = client.post(
        "/api/tasks",
        data=raw_json({**TASK, "entity_name": "Acme \U0001f600"}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201, response.json
    assert response.json["entity_name"] == "Acme \U0001f600"


# --- query strings and forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/tasks", "entity_name"),
        ("/api/users", "search"),
        ("/api/chat/search", "q"),
        ("/api/audit-logs", "action"),
    ],
)
def test_nul_in_a_query_string_is_400_naming_the_parameter(client, admin, auth_headers, path, name):
    response = client.get(path, query_string={name: "a\x00b"}, headers=auth_headers(admin))
    assert_unstorable(response, name)


def test_utf8_of_a_surrogate_in_a_query_string_is_not_a_server_error(client, headers):
    """Percent-encoded UTF-8 of a surrogate is invalid UTF-8: it decodes to U+FFFD, which is storable text."""
    response = client.get("/api/tasks?entity_name=%ED%A0%80", headers=headers)
    assert response.status_code == 200, response.json


def test_form_fields_sent_to_a_json_endpoint_are_refused_not_stored(client, headers):
    response = client.post("/api/tasks", data={**TASK, "entity_name": "a\x00b"}, headers=headers)
    assert response.status_code == 415, response.json
    assert response.json["code"] == "unsupported_media_type"
    assert task_count() == 0


# --- multipart file names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a\x00b.txt", "notes.t\x00xt", "\x00.txt"])
def test_nul_in_an_uploaded_file_name_is_400(client, headers, task, dm, name):
    for url in (f"/api/tasks/{task['id']}/attachments", f"/api/chat/conversations/{dm}/attachments"):
        response = client.post(
            url,
            data={"file": (io.BytesIO(b"hello"), name, "text/plain")},
            headers=headers,
            content_type="multipart/form-data",
        )
        assert_unstorable(response, "file")
    assert client.get(f"/api/tasks/{task['id']}/attachments", headers=headers).json["items"] == []


# --- Socket.IO payloads --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("send_message", {"content": f"hi {LONE}", "client_id": "c1"}, "content"),
        ("send_message", {"content": "hi", "client_id": f"c{LONE}"}, "client_id"),
        ("send_message", {"content": "a\x00b", "client_id": "c2"}, "content"),
        ("typing", {"is_typing": True, LONE: 1}, "_schema"),
        ("mark_read", {"message_ids": [LONE]}, "message_ids"),
        ("join_task", {"task_id": LONE}, "task_id"),
    ],
)
def test_unstorable_text_in_a_socket_payload_is_a_validation_error_ack(
    member, dm, socket_client, event, payload, field
):
    sock = socket_client(member)
    if event != "join_task":
        payload = {"conversation_id": dm, **payload}
    ack = sock.call(event, payload, timeout=5)
    assert ack == {"error": "Validation failed", "code": "validation_failed", "details": {field: [UNSTORABLE_MESSAGE]}}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_a_socket_token_with_a_lone_surrogate_is_refused_as_invalid(live_server, socket_client):
    sock = socket_client(connect=False)
    with pytest.raises(SocketConnectionError):
        sock.connect(live_server.url, auth={"token": f"abc{LONE}"}, transports=["websocket"])
    [refusal] = sock.connect_errors
    assert refusal["data"]["code"] == "token_invalid"


def test_the_connection_still_works_after_a_refused_payload(member, dm, socket_client):
    sock = socket_client(member)
    assert sock.call("send_message", {"conversation_id": dm, "content": LONE, "client_id": "x"}, timeout=5)["code"] == (
        "validation_failed"
    )
    ack = sock.call(
        "send_message", {"conversation_id": dm, "content": "fine", "client_id": str(uuid.uuid4())}, timeout=5
    )
    assert ack["content"] == "fine"
