"""Bad input of every kind gets the one error shape and a 4xx, never a 5xx.

Shape: `{"error": "<message>", "code": "<code>", "details": {...}}`.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from flask_jwt_extended import create_access_token, decode_token

from finstack.extensions import db
from finstack.users.models import User

TASK_PATH = "/api/tasks/{task_id}"


def assert_error(response, status, *fields):
    """The one error shape, with messages for each of `fields` (per item, `{index: [...]}`, for lists)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "code", "details"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    for field in fields:
        messages = body["details"].get(field)
        if isinstance(messages, dict):
            messages = [message for item in messages.values() for message in item]
        assert isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages), body
    return body


def assert_not_server_error(response):
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert_error(response, response.status_code)


@pytest.fixture
def headers(member, auth_headers):
    return auth_headers(member)


def new_task(client, headers, **fields):
    data = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z", **fields}
    response = client.post("/api/tasks", json=data, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def task(client, headers):
    return new_task(client, headers)


def task_count():
    from finstack.tasks.models import Task

    return db.session.scalar(sa.select(sa.func.count()).select_from(Task))


# Every operation that reads a JSON body, with a body it accepts (`{task_id}` is filled in).
JSON_BODY_ENDPOINTS = [
    (
        "POST",
        "/api/auth/register",
        {"username": "fresh", "email": "fresh@example.com", "password": "long-enough", "full_name": "F"},
    ),
    ("POST", "/api/auth/login", {"username": "{username}", "password": PASSWORD}),
    ("POST", "/api/auth/logout", {}),
    ("PUT", "/api/users/me", {"full_name": "Someone"}),
    ("PUT", "/api/users/me/password", {"current_password": PASSWORD, "new_password": "another-secret"}),
    ("PUT", "/api/users/me/preferences", {}),
    ("POST", "/api/tasks", {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}),
    ("PUT", TASK_PATH, {"note": "changed"}),
    ("PATCH", TASK_PATH + "/status", {"status": "closed"}),
    ("POST", "/api/tasks/bulk-status", {"task_ids": ["{task_id}"], "status": "closed"}),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in JSON_BODY_ENDPOINTS]


def fill(value, **names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(item, **names) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, **names) for key, item in value.items()}
    return value


def test_the_endpoint_table_matches_the_documented_api(client):
    """The table is not stale: each entry is a documented operation taking a JSON body.

    Operations added later are still swept by `test_no_documented_operation_answers_5xx_to_garbage`.
    """
    spec = client.get("/api/openapi.json").json
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert {(method, path) for method, path, _ in JSON_BODY_ENDPOINTS} <= documented


MALFORMED_BODIES = {
    "truncated": b'{"a": ',
    "single quotes": b"{'a': 1}",
    "trailing comma": b'{"a": 1,}',
    "bare word": b"hello",
    "invalid utf-8": b'{"a": "\xff\xfe"}',
    "deeply nested": b"[" * 100_000,
    "deeply nested object": b'{"a":' * 50_000,
}


@pytest.mark.parametrize("kind", MALFORMED_BODIES)
@pytest.mark.parametrize(("method", "path", "body"), JSON_BODY_ENDPOINTS, ids=ENDPOINT_IDS)
def test_malformed_json_is_400(client, headers, member, task, method, path, body, kind):
    response = client.open(
        fill(path, task_id=task["id"]),
        method=method,
        data=MALFORMED_BODIES[kind],
        content_type="application/json",
        headers=headers,
    )
    body = assert_error(response, 400)
    assert body["error"] == "Malformed JSON body"
    assert body["details"] == {"_schema": ["Invalid JSON body."]}


NOT_AN_OBJECT = ["[]", '[{"a": 1}]', '"a string"', "42", "true", "null", "NaN"]


@pytest.mark.parametrize("raw", NOT_AN_OBJECT)
@pytest.mark.parametrize(("method", "path", "body"), JSON_BODY_ENDPOINTS, ids=ENDPOINT_IDS)
def test_json_that_is_not_an_object_is_400(client, headers, task, method, path, body, raw):
    response = client.open(
        fill(path, task_id=task["id"]),
        method=method,
        data=raw,
        content_type="application/json",
        headers=headers,
    )
    assert_error(response, 400, "_schema")


@pytest.mark.parametrize(("method", "path", "body"), JSON_BODY_ENDPOINTS, ids=ENDPOINT_IDS)
def test_unknown_body_fields_are_400_naming_them(client, headers, member, task, method, path, body):
    tasks_before = task_count()
    data = {**fill(body, task_id=task["id"], username=member.username), "unexpected_field": 1}
    response = client.open(fill(path, task_id=task["id"]), method=method, json=data, headers=headers)
    details = assert_error(response, 400, "unexpected_field")["details"]
    assert "unexpected_field" in details
    # Nothing happened: no account, no task, no status change, no new password.
    assert db.session.scalar(sa.select(User).where(User.username == "fresh")) is None
    assert task_count() == tasks_before
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).json["status"] == "open"
    login = client.post("/api/auth/login", json={"username": member.username, "password": PASSWORD})
    assert login.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), JSON_BODY_ENDPOINTS, ids=ENDPOINT_IDS)
def test_the_accepted_bodies_really_are_accepted(client, headers, member, task, method, path, body):
    """The control for the tests above: without the defect, each body succeeds."""
    data = fill(body, task_id=task["id"], username=member.username)
    response = client.open(fill(path, task_id=task["id"]), method=method, json=data, headers=headers)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)


TASK_BODY = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}
WRONG_TYPES = [
    ("POST", "/api/auth/login", {"username": ["admin"], "password": PASSWORD}, "username"),
    ("POST", "/api/auth/login", {"username": "admin", "password": 12345678}, "password"),
    ("POST", "/api/auth/login", {"username": True, "password": PASSWORD}, "username"),
    (
        "POST",
        "/api/auth/register",
        {"username": {"a": 1}, "email": "x@example.com", "password": "long-enough", "full_name": "X"},
        "username",
    ),
    ("POST", "/api/auth/logout", {"refresh_token": 5}, "refresh_token"),
    ("PUT", "/api/users/me", {"phone": True}, "phone"),
    ("PUT", "/api/users/me", {"email": 1.5}, "email"),
    ("PUT", "/api/users/me/password", {"current_password": None, "new_password": "long-enough"}, "current_password"),
    ("POST", "/api/tasks", {**TASK_BODY, "entity_name": 5}, "entity_name"),
    ("POST", "/api/tasks", {**TASK_BODY, "task_time": "tomorrow"}, "task_time"),
    ("POST", "/api/tasks", {**TASK_BODY, "task_time": 1700000000}, "task_time"),
    ("POST", "/api/tasks", {**TASK_BODY, "status": "done"}, "status"),
    ("POST", "/api/tasks", {**TASK_BODY, "priority": ["high"]}, "priority"),
    ("POST", "/api/tasks", {**TASK_BODY, "note": {"text": "x"}}, "note"),
    ("PUT", TASK_PATH, {"entity_name": None}, "entity_name"),
    ("PUT", TASK_PATH, {"note": "x", "version": "one"}, "version"),
    ("PATCH", TASK_PATH + "/status", {"status": 1}, "status"),
    ("PATCH", TASK_PATH + "/status", {"status": "closed", "version": [1]}, "version"),
    ("POST", "/api/tasks/bulk-status", {"task_ids": "{task_id}", "status": "closed"}, "task_ids"),
    ("POST", "/api/tasks/bulk-status", {"task_ids": [], "status": "closed"}, "task_ids"),
    ("POST", "/api/tasks/bulk-status", {"task_ids": ["{task_id}"], "status": None}, "status"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), WRONG_TYPES)
def test_wrong_types_are_400_naming_the_field(client, headers, task, method, path, body, field):
    response = client.open(
        fill(path, task_id=task["id"]), method=method, json=fill(body, task_id=task["id"]), headers=headers
    )
    assert_error(response, 400, field)
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).json == task


def test_form_encoded_body_is_not_read_as_json(client, headers):
    response = client.post("/api/tasks", data=TASK_BODY, headers=headers)
    body = assert_error(response, 415)
    assert body["code"] == "unsupported_media_type" and "application/json" in body["error"]
    assert task_count() == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/users?bogus=1", "bogus"),
        ("/api/users?Page=1", "Page"),
        ("/api/users?search=a&sort=name", "sort"),
        ("/api/tasks?bogus=1", "bogus"),
        ("/api/tasks?status=open&assignee=me", "assignee"),
        ("/api/analytics/dashboard?bogus=1", "bogus"),
    ],
)
def test_unknown_query_parameters_are_400_naming_them(client, headers, path, field):
    assert_error(client.get(path, headers=headers), 400, field)


# --- identifiers ----------------------------------------------------------------------------------

BAD_IDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%27%20OR%201=1", "x" * 300]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("GET", "", None), ("PUT", "", {"note": "x"}), ("DELETE", "", None), ("PATCH", "/status", {"status": "closed"})],
)
def test_bad_uuid_in_the_path_is_a_json_404(client, headers, method, suffix, body, bad_id):
    response = client.open(f"/api/tasks/{bad_id}{suffix}", method=method, json=body, headers=headers)
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("GET", "", None), ("PUT", "", {"note": "x"}), ("DELETE", "", None), ("PATCH", "/status", {"status": "closed"})],
)
def test_unknown_task_id_is_a_json_404(client, headers, method, suffix, body):
    response = client.open(f"/api/tasks/{uuid.uuid4()}{suffix}", method=method, json=body, headers=headers)
    assert "not found" in assert_error(response, 404)["error"].lower()


def test_bad_uuid_in_the_body_is_400(client, headers, task):
    assert_error(
        client.post("/api/tasks", json={**TASK_BODY, "contact_person_id": "nope"}, headers=headers),
        400,
        "contact_person_id",
    )
    assert_error(
        client.post("/api/tasks", json={**TASK_BODY, "contact_person_id": str(uuid.uuid4())}, headers=headers),
        400,
        "contact_person_id",
    )
    assert_error(
        client.post(
            "/api/tasks/bulk-status", json={"task_ids": [task["id"], "nope"], "status": "closed"}, headers=headers
        ),
        400,
        "task_ids",
    )
    assert task_count() == 1
    assert client.get(f"/api/tasks/{task['id']}", headers=headers).json["status"] == "open"


@pytest.mark.parametrize("field", ["contact_person_id", "created_by"])
@pytest.mark.parametrize("value", ["nope", "123", "' OR 1=1 --"])
def test_bad_uuid_in_the_query_is_400(client, headers, field, value):
    assert_error(client.get("/api/tasks", query_string={field: value}, headers=headers), 400, field)


# --- paging ---------------------------------------------------------------------------------------

LIST_ENDPOINTS = ["/api/users", "/api/tasks"]
BAD_PAGES = [
    ("page", "0"),
    ("page", "-1"),
    ("page", "abc"),
    ("page", str(10**30)),
    ("page", "1.5"),
    ("page", "1e3"),
    ("page", ""),
    ("per_page", "0"),
    ("per_page", "-5"),
    ("per_page", "101"),
    ("per_page", "abc"),
    ("per_page", str(10**30)),
]


@pytest.mark.parametrize(("name", "value"), BAD_PAGES)
@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_out_of_range_paging_is_400_naming_the_parameter(client, headers, path, name, value):
    assert_error(client.get(path, query_string={name: value}, headers=headers), 400, name)


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_paging_at_the_limits_is_fine(client, headers, task, path):
    response = client.get(path, query_string={"per_page": 100}, headers=headers)
    assert response.status_code == 200
    assert response.json["pagination"]["per_page"] == 100
    assert len(response.json["items"]) == 1


@pytest.mark.parametrize("page", ["2", "57", "1000000"])
@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_a_page_far_beyond_the_last_is_empty(client, headers, task, path, page):
    response = client.get(path, query_string={"page": page}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["items"] == []
    assert response.json["pagination"] == {
        "page": int(page), "per_page": 20, "total": 1, "pages": 1, "total_exact": True, "next_cursor": None
    }


# --- pattern characters in filters ----------------------------------------------------------------

ENTITIES = {
    "pct": "Rate 100% Ltd",
    "nopct": "Rate 1000 Ltd",
    "under": "snake_case Ltd",
    "nounder": "snakeXcase Ltd",
    "slash": "Back\\slash Ltd",
    "noslash": "Backslash Ltd",
    "bracket": "Bracket [x] Ltd",
    "nobracket": "Bracket x Ltd",
    "regex": "Regex .* Ltd",
    "noregex": "Regex ab Ltd",
    "quote": "O'Brien Ltd",
    "dquote": 'The "Quoted" Ltd',
}
PATTERN_FILTERS = [
    ("%", {"pct"}),
    ("100%", {"pct"}),
    ("_", {"under"}),
    ("e_c", {"under"}),
    ("\\", {"slash"}),
    ("k\\s", {"slash"}),
    ("[", {"bracket"}),
    ("[x]", {"bracket"}),
    (".*", {"regex"}),
    ("ab.", set()),
    ("'", {"quote"}),
    ("'; DROP TABLE tasks; --", set()),
    ('"', {"dquote"}),
    ("^rate", set()),
    ("LTD", set(ENTITIES)),
]


@pytest.fixture
def pattern_tasks(client, headers):
    return {key: new_task(client, headers, entity_name=name, task_type=name)["id"] for key, name in ENTITIES.items()}


@pytest.mark.parametrize("field", ["entity_name", "task_type"])
@pytest.mark.parametrize(("term", "expected"), PATTERN_FILTERS)
def test_pattern_characters_in_task_filters_match_literally(client, headers, pattern_tasks, field, term, expected):
    response = client.get("/api/tasks", query_string={field: term, "per_page": 100}, headers=headers)
    assert response.status_code == 200, response.json
    assert {item["id"] for item in response.json["items"]} == {pattern_tasks[key] for key in expected}
    assert response.json["pagination"]["total"] == len(expected)


@pytest.mark.parametrize("term", ["%", "_", "\\", "[", ".*", "'", '"', "%_%", "\\%", "' OR 1=1 --"])
def test_pattern_characters_in_user_search_match_nobody_here(client, headers, term):
    response = client.get("/api/users", query_string={"search": term}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["items"] == []


# --- NUL characters (PostgreSQL cannot store them; they must be a 400 everywhere) -----------------

NUL_REQUESTS = [
    ("POST", "/api/auth/login", None, {"username": "ad\x00min", "password": PASSWORD}, "username"),
    ("POST", "/api/auth/login", None, {"email": "a\x00@example.com", "password": PASSWORD}, "email"),
    (
        "POST",
        "/api/auth/register",
        None,
        {"username": "nul_user", "email": "nul@example.com", "password": "long-enough", "full_name": "A\x00B"},
        "full_name",
    ),
    ("PUT", "/api/users/me", None, {"full_name": "A\x00B"}, "full_name"),
    (
        "PUT",
        "/api/users/me/password",
        None,
        {"current_password": "\x00", "new_password": "long-enough"},
        "current_password",
    ),
    ("POST", "/api/tasks", None, {**TASK_BODY, "entity_name": "Acme\x00"}, "entity_name"),
    ("POST", "/api/tasks", None, {**TASK_BODY, "note": "a\x00b"}, "note"),
    ("GET", "/api/users", {"search": "a\x00b"}, None, "search"),
    ("GET", "/api/tasks", {"entity_name": "\x00"}, None, "entity_name"),
    ("GET", "/api/tasks", {"task_type": "x\x00"}, None, "task_type"),
]


@pytest.mark.parametrize(("method", "path", "query", "body", "field"), NUL_REQUESTS)
def test_nul_characters_are_400_naming_the_field(client, headers, method, path, query, body, field):
    response = client.open(path, method=method, query_string=query, json=body, headers=headers)
    assert_error(response, 400, field)
    assert task_count() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


# --- routing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/nope", "/nope", "/api/tasks/x/y/z", "/api/users/someone"])
def test_unknown_route_is_a_json_404(client, headers, path):
    assert_error(client.get(path, headers=headers), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/auth/login", {"POST"}),
        ("GET", "/api/auth/logout", {"POST"}),
        ("PUT", "/api/health", {"GET"}),
        ("PATCH", "/api/users", {"GET"}),
        ("POST", "/api/users/me", {"GET", "PUT"}),
        ("DELETE", "/api/tasks", {"GET", "POST"}),
    ],
)
def test_wrong_method_is_a_json_405(client, headers, method, path, allowed):
    response = client.open(path, method=method, headers=headers)
    assert_error(response, 405)
    assert allowed <= {name.strip() for name in response.headers["Allow"].split(",")}


# --- body size ------------------------------------------------------------------------------------


@pytest.fixture
def small_app(app_config, request):
    # The configuration keeps MAX_CONTENT_LENGTH above the attachment limit, so lower that too.
    app_config.update(MAX_CONTENT_LENGTH=1024, MAX_UPLOAD_MB=0)
    return request.getfixturevalue("app")


def test_body_over_max_content_length_is_a_json_413(small_app, make_user, auth_headers):
    client = small_app.test_client()
    limit = small_app.config["MAX_CONTENT_LENGTH"]
    assert limit <= 1024 * 1024
    member = make_user()
    big = {"username": "big", "email": "big@example.com", "password": "long-enough", "full_name": "x" * limit}
    body = assert_error(client.post("/api/auth/register", json=big), 413)
    assert body["details"] == {"max_bytes": limit}
    assert db.session.scalar(sa.select(User).where(User.username == "big")) is None

    big_task = {**TASK_BODY, "note": "n" * limit}
    assert_error(client.post("/api/tasks", json=big_task, headers=auth_headers(member)), 413)
    assert_error(client.post("/api/auth/login", json={"username": "x" * limit, "password": "p"}), 413)
    assert task_count() == 0

    # Below the limit everything works.
    assert client.post("/api/tasks", json=TASK_BODY, headers=auth_headers(member)).status_code == 201


# --- tokens ---------------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/users"),
    ("GET", "/api/users/me"),
    ("PUT", "/api/users/me"),
    ("PUT", "/api/users/me/password"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", TASK_PATH),
    ("POST", "/api/tasks/bulk-status"),
    ("GET", "/api/analytics/dashboard"),
]


def _claims(user_id, **overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": user_id,
        "type": "access",
        "jti": str(uuid.uuid4()),
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(hours=1),
    }
    claims.update(overrides)
    return claims


def bad_authorization(kind, app, user):
    secret = app.config["JWT_SECRET_KEY"]
    return {
        "missing": None,
        "empty": "",
        "bearer only": "Bearer",
        "garbage": "Bearer garbage",
        "three garbage parts": "Bearer a.b.c",
        "basic": "Basic dXNlcjpwYXNzd29yZA==",
        "no scheme": create_access_token(identity=str(user.id)),
        "expired": "Bearer " + create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=-1)),
        "wrong key": "Bearer " + pyjwt.encode(_claims(str(user.id)), "some-other-key-" * 4, algorithm="HS256"),
        "alg none": "Bearer " + pyjwt.encode(_claims(str(user.id)), None, algorithm="none"),
        "unknown user": "Bearer " + create_access_token(identity=str(uuid.uuid4())),
        "sub not a uuid": "Bearer " + pyjwt.encode(_claims("not-a-uuid"), secret, algorithm="HS256"),
        "no sub": "Bearer "
        + pyjwt.encode({k: v for k, v in _claims("x").items() if k != "sub"}, secret, algorithm="HS256"),
        "not yet valid": "Bearer "
        + pyjwt.encode(_claims(str(user.id), nbf=datetime.now(UTC) + timedelta(hours=1)), secret, algorithm="HS256"),
        "refresh token": "Bearer " + pyjwt.encode(_claims(str(user.id), type="refresh"), secret, algorithm="HS256"),
    }[kind]


TOKEN_KINDS = [
    "missing",
    "empty",
    "bearer only",
    "garbage",
    "three garbage parts",
    "basic",
    "no scheme",
    "expired",
    "wrong key",
    "alg none",
    "unknown user",
    "sub not a uuid",
    "no sub",
    "not yet valid",
    "refresh token",
]


@pytest.mark.parametrize("kind", TOKEN_KINDS)
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_bad_tokens_are_a_json_401(app, client, member, task, method, path, kind):
    authorization = bad_authorization(kind, app, member)
    request_headers = {} if authorization is None else {"Authorization": authorization}
    response = client.open(fill(path, task_id=task["id"]), method=method, json={}, headers=request_headers)
    assert_error(response, 401)


def test_a_well_formed_token_built_the_same_way_is_accepted(app, client, member):
    """The control for the hand-built tokens above (with the sign-in and version claims of a real token)."""
    session_claims = decode_token(create_access_token(identity=str(member.id)))
    claims = _claims(str(member.id), ver=session_claims["ver"], fam=session_claims["fam"])
    token = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json


def test_expired_token_says_so(client, member):
    token = create_access_token(identity=str(member.id), expires_delta=timedelta(seconds=-1))
    body = assert_error(client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}), 401)
    assert "expired" in body["error"].lower()


def test_missing_token_says_so(client):
    body = assert_error(client.get("/api/users"), 401)
    assert "authorization" in body["error"].lower() or "token" in body["error"].lower()


# --- a sweep over the whole documented API --------------------------------------------------------

SWEEP_VALUES = ["", "%", "_", "\\", "'", '"', "[", ".*", "\x00", "-1", "0", "1e309", "x" * 5000, "\u202e\u0000"]
SWEEP_BODIES = [
    b'{"a": ',
    b"[" * 5000,
    b'{"x": ' + b"[" * 900 + b"]" * 900 + b"}",
    b"[]",
    b"null",
    b'{"\\u0000": 1}',
    b'{"' + b"k" * 5000 + b'": 1}',
    b'{"username": "\\u0000", "email": "\\u0000", "password": "\\u0000", "full_name": "\\u0000",'
    b' "entity_name": "\\u0000", "task_type": "\\u0000", "status": "\\u0000", "task_ids": ["\\u0000"]}',
]


def _operations(client):
    spec = client.get("/api/openapi.json").json
    for path, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method == "parameters":
                continue
            yield method.upper(), path, shared + operation.get("parameters", []), "requestBody" in operation


def test_no_documented_operation_answers_5xx_to_garbage(client, headers, task):
    checked = 0
    for method, path, parameters, has_body in _operations(client):
        url = path
        for parameter in parameters:
            if parameter["in"] == "path":
                url = url.replace("{" + parameter["name"] + "}", str(uuid.uuid4()))
        query_names = [parameter["name"] for parameter in parameters if parameter["in"] == "query"]
        for value in SWEEP_VALUES:
            for name in query_names:
                assert_not_server_error(client.open(url, method=method, query_string={name: value}, headers=headers))
                checked += 1
        if has_body:
            for raw in SWEEP_BODIES:
                response = client.open(url, method=method, data=raw, content_type="application/json", headers=headers)
                assert_not_server_error(response)
                assert 400 <= response.status_code < 500, (method, url, raw[:40], response.json)
                checked += 1
    assert checked > 100


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="terminates a PostgreSQL backend")
def test_a_connection_the_database_dropped_is_a_503_then_the_pool_recovers(app, client, auth_headers, member):
    """The pool does not ping on checkout: a dropped connection is found out on use, answered 503, and replaced."""
    headers = auth_headers(member)
    db.session.remove()
    db.engine.dispose()
    assert client.get("/api/tasks", headers=headers).status_code == 200  # the pool's one connection
    pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
    db.session.remove()  # back to the pool, still its only connection
    killer = sa.create_engine(os.environ["TEST_DATABASE_URL"])
    with killer.begin() as connection:
        assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    lost = client.get("/api/tasks", headers=headers)
    assert lost.status_code == 503
    assert lost.json["code"] == "service_unavailable" and lost.headers["Retry-After"] == "1"
    assert client.get("/api/tasks", headers=headers).status_code == 200
