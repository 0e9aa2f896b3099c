"""JSON responses are encoded by orjson (finstack/core/json_provider.py) yet read as Flask's encoder wrote them:
keys sorted, dates by Flask's rule, one trailing newline; text as UTF-8; what orjson refuses takes Flask's encoder."""

import datetime
import json
import uuid

from flask import jsonify

TASK = {"entity_name": "Société Générale, 東京 ✓", "task_type": "Call", "task_time": "2030-01-01T10:00:00Z"}


def test_a_response_is_utf8_with_sorted_keys_and_a_trailing_newline(client, member, auth_headers):
    headers = auth_headers(member)
    created = client.post("/api/tasks", json=TASK, headers=headers)
    assert created.status_code == 201, created.get_json()
    response = client.get(f"/api/tasks/{created.get_json()['id']}", headers=headers)
    body = response.get_data()
    assert response.mimetype == "application/json"
    assert body.endswith(b"}\n") and not body.endswith(b"\n\n")
    assert TASK["entity_name"].encode() in body  # UTF-8, not \u escapes
    document = json.loads(body)
    assert document["entity_name"] == TASK["entity_name"]
    assert list(document) == sorted(document)
    assert list(document["creator"]) == sorted(document["creator"])


def test_values_read_as_flask_encoded_them(app):
    value = {
        "b": 1,
        "a": datetime.date(2026, 1, 2),
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "id": uuid.UUID(int=1),
    }
    with app.test_request_context():
        flask_text = json.dumps(value, default=app.json.default, sort_keys=True, separators=(",", ":")) + "\n"
        assert jsonify(value).get_data(as_text=True) == flask_text


def test_what_orjson_refuses_takes_flasks_encoder(app):
    with app.test_request_context():
        big = jsonify({"count": 2**70}).get_data(as_text=True)
        lone = jsonify({"text": "\ud800"}).get_data(as_text=True)
    assert big == '{"count":1180591620717411303424}\n'
    assert lone == '{"text":"\\ud800"}\n'
