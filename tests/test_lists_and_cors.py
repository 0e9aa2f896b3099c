"""Consistent lists and names: the chat-message cursor envelope, one set of attachment field names, and CORS that
lets a browser front end read the headers it needs."""

import io

import pytest

from finstack import CORS_EXPOSED_HEADERS, CORS_MAX_AGE
from finstack.chat import conversations, messages

ORIGIN = "http://localhost:4200"  # allowed by the default CORS_ORIGIN


@pytest.fixture
def headers(member, auth_headers):
    return auth_headers(member)


def new_task(client, headers):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_chat_messages_answer_a_cursor_envelope_in_the_spec_too(client, headers, member, make_user):
    conversation, _ = conversations.create_conversation(member, participant_ids=[make_user().id])
    ids = [str(messages.send_message(member, conversation.id, f"m{n}")[0].id) for n in range(3)]
    url = f"/api/chat/conversations/{conversation.id}/messages"

    latest = client.get(url, query_string={"limit": 2}, headers=headers).json
    assert set(latest) == {"items", "cursor"}
    assert latest["cursor"] == {"limit": 2, "has_more": True, "oldest_id": ids[1], "newest_id": ids[2]}
    older = client.get(url, query_string={"limit": 2, "before": latest["cursor"]["oldest_id"]}, headers=headers).json
    assert [m["id"] for m in older["items"]] == ids[:1] and older["cursor"]["has_more"] is False

    spec = client.get("/api/openapi.json").json
    schema = spec["paths"]["/api/chat/conversations/{conversation_id}/messages"]["get"]["responses"]["200"]
    ref = schema["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    page = spec["components"]["schemas"][ref]
    assert set(page["properties"]) == {"items", "cursor"}  # no `pagination` with `pages` it cannot serve
    cursor = spec["components"]["schemas"][page["properties"]["cursor"]["$ref"].rsplit("/", 1)[-1]]
    assert set(cursor["properties"]) == {"limit", "has_more", "oldest_id", "newest_id"}


def test_every_other_list_pages_by_number(client):
    """Every documented list but chat messages answers `{"items", "pagination"}` (the spec says so)."""
    spec = client.get("/api/openapi.json").json
    schemas = spec["components"]["schemas"]
    envelopes = {}
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        content = (get or {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json")
        ref = (content or {}).get("schema", {}).get("$ref")
        if ref and "items" in schemas[ref.rsplit("/", 1)[-1]].get("properties", {}):
            envelopes[path] = set(schemas[ref.rsplit("/", 1)[-1]]["properties"])
    assert envelopes.pop("/api/chat/conversations/{conversation_id}/messages") == {"items", "cursor"}
    assert len(envelopes) >= 10
    assert all(fields == {"items", "pagination"} for fields in envelopes.values()), envelopes


def test_task_and_chat_attachments_use_the_same_field_names(client, headers, member, make_user):
    task = new_task(client, headers)
    conversation, _ = conversations.create_conversation(member, participant_ids=[make_user().id])
    uploads = {}
    for kind, url in (
        ("task", f"/api/tasks/{task['id']}/attachments"),
        ("chat", f"/api/chat/conversations/{conversation.id}/attachments"),
    ):
        response = client.post(
            url,
            data={"file": (io.BytesIO(b"hello"), "notes.txt", "text/plain")},
            content_type="multipart/form-data",
            headers=headers,
        )
        assert response.status_code == 201, response.json
        uploads[kind] = response.json
    assert set(uploads["task"]) - {"task_id"} == set(uploads["chat"]) - {"conversation_id"}
    for body in uploads.values():
        assert body["original_name"] == "notes.txt" and body["size_bytes"] == 5
        assert body["uploader_id"] == str(member.id) and body["uploader"]["username"] == member.username

    spec = client.get("/api/openapi.json").json["components"]["schemas"]
    assert set(spec["AttachmentOut"]["properties"]) - {"task_id"} == set(spec["ChatAttachmentOut"]["properties"]) - {
        "conversation_id"
    }


def test_cors_exposes_the_headers_a_front_end_reads(client, headers):
    response = client.get("/api/health", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    expected = {"content-disposition", "retry-after", "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining"}
    expected |= {"x-ratelimit-reset", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy"}
    assert expected <= exposed
    assert {name.lower() for name in CORS_EXPOSED_HEADERS} == exposed

    error = client.get("/api/tasks", headers={"Origin": ORIGIN})  # errors are readable cross-origin too
    assert error.status_code == 401
    assert "content-disposition" in error.headers["Access-Control-Expose-Headers"].lower()


def test_a_preflight_may_be_cached(client):
    response = client.options(
        "/api/tasks",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code < 400
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Max-Age"] == str(CORS_MAX_AGE) == "600"


def test_a_download_names_its_file_to_a_cross_origin_front_end(client, headers, member):
    task = new_task(client, headers)
    uploaded = client.post(
        f"/api/tasks/{task['id']}/attachments",
        data={"file": (io.BytesIO(b"hello"), "notes.txt", "text/plain")},
        content_type="multipart/form-data",
        headers=headers,
    ).json
    download = client.get(uploaded["download_url"], headers={**headers, "Origin": ORIGIN})
    assert "notes.txt" in download.headers["Content-Disposition"]
    assert "content-disposition" in download.headers["Access-Control-Expose-Headers"].lower()
