"""Errors a front end can act on: a stable `code` from one table on every error, no internal text, 415 for non-JSON.

The table (`ERROR_CODES`) is the contract: the README and the OpenAPI spec list it, and every code the code base
can send (REST errors, Socket.IO acks and connect refusals) is in it.
"""

import ast
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask_jwt_extended import create_access_token

from finstack.core.blueprint import JSON_REQUIRED
from finstack.errors import ERROR_CODES, STATUS_CODES, ApiError

ROOT = Path(__file__).resolve().parent.parent
TASK = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}


def error_of(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "code", "details"}, body
    assert body["code"] == code, body
    return body


@pytest.fixture
def headers(member, auth_headers):
    return auth_headers(member)


@pytest.fixture
def task(client, headers):
    response = client.post("/api/tasks", json=TASK, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


# --- the right code for each kind of error -------------------------------------------------------------------------


def test_validation_malformed_and_not_found_codes(client, headers, task):
    error_of(client.post("/api/tasks", json={"entity_name": "Acme"}, headers=headers), 400, "validation_failed")
    error_of(
        client.post("/api/tasks", data="{nope", content_type="application/json", headers=headers), 400, "malformed_json"
    )
    error_of(client.get("/api/tasks/00000000-0000-0000-0000-000000000000", headers=headers), 404, "not_found")
    error_of(client.get("/api/no-such-thing", headers=headers), 404, "not_found")
    error_of(client.delete("/api/tasks", headers=headers), 405, "method_not_allowed")


def test_a_stale_version_is_a_version_conflict(client, headers, task):
    url = f"/api/tasks/{task['id']}"
    assert client.put(url, json={"note": "first", "version": task["version"]}, headers=headers).status_code == 200
    body = error_of(
        client.put(url, json={"note": "second", "version": task["version"]}, headers=headers), 409, "version_conflict"
    )
    assert body["details"] == {"current_version": task["version"] + 1}
    stale_status = client.patch(f"{url}/status", json={"status": "closed", "version": task["version"]}, headers=headers)
    error_of(stale_status, 409, "version_conflict")


def test_a_duplicate_is_a_conflict_and_a_forbidden_action_is_forbidden(
    client, headers, member, make_user, auth_headers
):
    taken = {"username": member.username, "email": "other@example.com", "password": "long-enough", "full_name": "X"}
    error_of(client.post("/api/auth/register", json=taken), 409, "conflict")
    error_of(client.get("/api/audit-logs", headers=headers), 403, "forbidden")


def test_token_codes_and_no_decoder_text(client, member):
    missing = error_of(client.get("/api/auth/me"), 401, "token_missing")
    assert missing["details"] == {} and "Authorization: Bearer" in missing["error"]
    for garbage in ("not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"):
        body = error_of(
            client.get("/api/auth/me", headers={"Authorization": f"Bearer {garbage}"}), 401, "token_invalid"
        )
        # PyJWT's own words ("Not enough segments", "Invalid header padding", ...) stay in the log.
        assert body == {"error": "Invalid token", "code": "token_invalid", "details": {}}
    bad_scheme = error_of(client.get("/api/auth/me", headers={"Authorization": "Basic abc"}), 401, "token_missing")
    assert "Bearer" in bad_scheme["error"] and bad_scheme["details"] == {}
    expired = create_access_token(identity=str(member.id), expires_delta=timedelta(seconds=-1))
    error_of(client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"}), 401, "token_expired")


def test_an_http_exception_never_shows_its_own_text(app, client):
    """A werkzeug exception raised with a custom description (Flask's own JSON loader does that, quoting the
    decoder) answers with the class's generic text."""
    from werkzeug.exceptions import BadRequest

    @app.get("/api/_leaky")
    def leaky():
        raise BadRequest("Failed to decode JSON object: Expecting value: line 1 column 1 (char 0)")

    body = error_of(client.get("/api/_leaky"), 400, "bad_request")
    assert "Expecting value" not in body["error"]


def test_an_unknown_code_is_a_programming_error():
    with pytest.raises(ValueError, match="ERROR_CODES"):
        ApiError(400, "x", code="no_such_code")
    assert ApiError(409, "x").code == "conflict"
    assert set(STATUS_CODES.values()) <= set(ERROR_CODES)


# --- 415: a JSON endpoint reads JSON only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b'{"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}'),
        ("application/x-www-form-urlencoded", b'{"entity_name": "Acme"}'),
        ("application/x-www-form-urlencoded", b"entity_name=Acme&task_type=Call&task_time=2030-01-01"),
        ("multipart/form-data; boundary=X", b'--X\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--X--\r\n'),
        (None, b'{"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}'),
        ("application/xml", b"<task/>"),
    ],
)
def test_a_body_that_is_not_declared_json_is_415(client, headers, content_type, data):
    response = client.post(
        "/api/tasks", data=data, headers={**headers, **({"Content-Type": content_type} if content_type else {})}
    )
    body = error_of(response, 415, "unsupported_media_type")
    assert body["error"] == JSON_REQUIRED and "application/json" in body["error"]
    assert client.get("/api/tasks", headers=headers).json["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/auth/login", b'{"username": "x", "password": "y"}'),
        ("PUT", "/api/users/me", b'{"full_name": "X"}'),
        ("PATCH", "/api/tasks/{task_id}/status", b'{"status": "closed"}'),
        ("POST", "/api/tasks/{task_id}/comments", b'{"content": "hi"}'),
    ],
)
def test_415_on_every_kind_of_json_endpoint(client, headers, task, method, path, body):
    response = client.open(
        path.format(task_id=task["id"]), method=method, data=body, content_type="text/plain", headers=headers
    )
    error_of(response, 415, "unsupported_media_type")


def test_json_with_a_charset_or_a_json_suffix_type_is_read(client, headers):
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/api/tasks",
            data=b'{"entity_name": "A", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}',
            content_type=content_type,
            headers=headers,
        )
        assert response.status_code == 201, response.json


def test_no_body_at_all_is_not_415(client, headers, make_user, member):
    """An optional body left out (any content type, or none) is fine; a required one is `body_required`."""
    other = make_user()
    conversation = client.post(
        "/api/chat/conversations", json={"participant_ids": [str(other.id)]}, headers=headers
    ).json
    read = client.post(f"/api/chat/conversations/{conversation['id']}/read", headers=headers, content_type="text/plain")
    assert read.status_code == 200, read.json
    error_of(client.post("/api/tasks", headers=headers), 400, "body_required")


def test_multipart_endpoints_keep_working(client, headers, task):
    response = client.post(
        f"/api/tasks/{task['id']}/attachments",
        data={"file": (io.BytesIO(b"hello"), "notes.txt", "text/plain")},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert response.status_code == 201, response.json


# --- one table, listed everywhere ----------------------------------------------------------------------------------


def _readme_codes():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Error codes") :]
    section = section[: section.index("\n#", 1)]
    return dict(re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", section, re.MULTILINE))


def test_the_readme_lists_every_code_with_its_meaning():
    assert _readme_codes() == ERROR_CODES


def test_the_openapi_error_schema_carries_the_codes(client):
    spec = client.get("/api/openapi.json").json
    code = spec["components"]["schemas"]["Error"]["properties"]["code"]
    assert code["enum"] == list(ERROR_CODES)
    for name in ERROR_CODES:
        assert f"`{name}`" in code["description"]


def _code_literals():
    """Every code named in the code base: `code="..."` keywords, `{"code": "..."}` dicts, SocketAuthError("...")."""
    found = {}
    for path in (ROOT / "finstack").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        found.setdefault(keyword.value.value, path.name)
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name == "SocketAuthError" and node.args and isinstance(node.args[0], ast.Constant):
                    found.setdefault(node.args[0].value, path.name)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                        found.setdefault(value.value, path.name)
    return found


def test_every_code_the_code_base_sends_is_in_the_table():
    found = _code_literals()
    assert {"token_missing", "token_expired", "token_revoked", "user_inactive", "internal_error"} <= set(found)
    unknown = {code: where for code, where in found.items() if code not in ERROR_CODES}
    assert unknown == {}


def test_socket_refusals_and_acks_use_the_table(member, live_server, socket_client, client, headers):
    from socketio.exceptions import ConnectionError as SocketConnectionError

    refused = socket_client(connect=False)
    with pytest.raises(SocketConnectionError):
        refused.connect(live_server.url, auth={"token": "garbage"}, transports=["websocket"])
    [refusal] = refused.connect_errors
    assert refusal["data"]["code"] in ERROR_CODES

    sock = socket_client(member)
    for event, payload in [
        ("join_task", {"task_id": "not-a-uuid"}),
        ("join_task", {"task_id": "00000000-0000-0000-0000-000000000000"}),
        ("typing", {"conversation_id": "00000000-0000-0000-0000-000000000000", "is_typing": True}),
    ]:
        ack = sock.call(event, payload, timeout=5)
        assert set(ack) == {"error", "code", "details"} and ack["code"] in ERROR_CODES, ack
    assert sock.call("join_task", {"task_id": "x"}, timeout=5)["code"] == "validation_failed"
    assert sock.call("join_task", {"task_id": "00000000-0000-0000-0000-000000000000"}, timeout=5)["code"] == "not_found"
