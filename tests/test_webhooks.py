"""Webhooks: admin CRUD, signed deliveries to a real HTTP receiver, retries, disabling, redelivery, SSRF refusals."""

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from finstack import webhooks
from finstack.extensions import db
from finstack.jobs import worker
from finstack.jobs.models import Job
from finstack.notifications.models import Notification
from finstack.webhooks.models import Webhook, WebhookDelivery

TASK = {"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00"}
SECRET = "s3cret-of-the-test-receiver"


def readme_verify():
    """The receiver's `verify` exactly as README "Webhooks" writes it: the test is a receiver written from it."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(code, namespace)
    return namespace["verify"]


class Receiver:
    """A threaded HTTP server on 127.0.0.1 recording each request; `answers` are the statuses to give, in turn
    (then 200). `location` is sent with a 3xx."""

    def __init__(self):
        self.requests = []
        self.answers = []
        self.location = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((time.monotonic(), dict(self.headers), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/finstack?source=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_DELAY": 0.0, "WEBHOOK_TIMEOUT_SECONDS": 5.0}


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def create_webhook(client, headers, url, events=("task_created",), **fields):
    response = client.post("/api/webhooks", json={"url": url, "events": list(events), **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def deliveries(client, headers, webhook_id):
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def drain():
    assert worker.drain(10, kinds=["webhook"])


def test_admins_manage_webhooks_and_the_secret_shows_once(client, admin, member, auth_headers):
    headers = auth_headers(admin)
    for method, path in [("get", "/api/webhooks"), ("post", "/api/webhooks")]:
        body = {"url": "https://hooks.example.com/x", "events": ["*"]} if method == "post" else None
        response = getattr(client, method)(path, json=body, headers=auth_headers(member))
        assert response.status_code == 403
        assert set(response.json) >= {"error", "details"}

    created = create_webhook(client, headers, "http://127.0.0.1:9/x", events=["task_updated", "task_created"])
    assert len(created["secret"]) == 64 and created["active"] is True
    assert created["events"] == ["task_created", "task_updated"]
    chosen = create_webhook(client, headers, "http://127.0.0.1:9/y", events=["*"], secret=SECRET, active=False)
    assert chosen["secret"] == SECRET and chosen["active"] is False

    listing = client.get("/api/webhooks", headers=headers).json
    assert [item["id"] for item in listing["items"]] == [chosen["id"], created["id"]]
    assert listing["pagination"]["total"] == 2
    assert all("secret" not in item for item in listing["items"])
    assert client.get(f"/api/webhooks/{created['id']}", headers=auth_headers(member)).status_code == 403
    shown = client.get(f"/api/webhooks/{created['id']}", headers=headers).json
    assert "secret" not in shown

    changed = client.put(
        f"/api/webhooks/{created['id']}", json={"events": ["project_deleted"], "secret": SECRET}, headers=headers
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["events"] == ["project_deleted"] and changed.json["url"] == "http://127.0.0.1:9/x"
    assert db.session.get(Webhook, uuid.UUID(changed.json["id"])).secret == SECRET

    for bad in [
        {"url": "ftp://example.com/x", "events": ["*"]},
        {"url": "https://example.com/x", "events": ["task_exploded"]},
        {"url": "https://example.com/x", "events": []},
        {"url": "https://example.com/x", "events": ["*"], "secret": "short"},
        {"url": "https://example.com/x", "events": ["*"], "colour": "red"},
    ]:
        response = client.post("/api/webhooks", json=bad, headers=headers)
        assert response.status_code == 400, bad

    assert client.delete(f"/api/webhooks/{created['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/webhooks/{created['id']}", headers=headers).status_code == 404


def test_a_delivery_is_signed_as_the_readme_says(client, admin, auth_headers, receiver):
    headers = auth_headers(admin)
    webhook = create_webhook(client, headers, receiver.url, secret=SECRET)
    task = client.post("/api/tasks", json=TASK, headers=headers).json
    drain()

    ((_, request_headers, body),) = receiver.requests
    verify = readme_verify()
    assert verify(SECRET, body, request_headers["X-FinStack-Signature"])
    assert not verify("another-secret-entirely", body, request_headers["X-FinStack-Signature"])
    assert not verify(SECRET, body + b" ", request_headers["X-FinStack-Signature"])
    event = json.loads(body)
    assert set(event) == {"id", "event", "created_at", "data"}
    assert event["event"] == "task_created" and event["data"]["id"] == task["id"]
    assert request_headers["X-FinStack-Event-Id"] == event["id"]
    assert request_headers["X-FinStack-Event"] == "task_created"
    assert request_headers["Content-Type"] == "application/json"

    (delivery,) = deliveries(client, headers, webhook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["response_code"] == 200
    assert delivery["event_id"] == event["id"] and delivery["duration_ms"] >= 0 and delivery["error"] is None


def test_failed_attempts_are_retried_with_backoff_until_one_succeeds(app, client, admin, auth_headers, receiver):
    app.config["WEBHOOK_RETRY_DELAY"] = 0.05
    headers = auth_headers(admin)
    webhook = create_webhook(client, headers, receiver.url)
    receiver.answers = [500, 503, 404]
    client.post("/api/tasks", json=TASK, headers=headers)
    drain()

    assert len(receiver.requests) == 4
    event_ids = {request_headers["X-FinStack-Event-Id"] for _, request_headers, _ in receiver.requests}
    assert len(event_ids) == 1  # one event, sent again
    gaps = [later[0] - earlier[0] for earlier, later in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # each retry waits at least half its back-off ceiling: 0.05 * 2^(n-1) / 2
    assert [gap >= 0.05 * 2**n / 2 for n, gap in enumerate(gaps)] == [True, True, True]
    (delivery,) = deliveries(client, headers, webhook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4 and delivery["response_code"] == 200


def test_a_run_of_failed_deliveries_disables_the_webhook_and_tells_the_admins(
    app, client, admin, make_user, auth_headers, receiver
):
    app.config.update(WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_DISABLE_AFTER=2)
    other_admin = make_user(role="admin")
    headers = auth_headers(admin)
    webhook = create_webhook(client, headers, receiver.url)
    receiver.answers = [500] * 10
    client.post("/api/tasks", json=TASK, headers=headers)
    drain()
    first = deliveries(client, headers, webhook["id"])
    assert [(item["status"], item["attempts"], item["response_code"]) for item in first] == [("failed", 2, 500)]
    assert first[0]["error"] == "HTTP 500"
    assert client.get(f"/api/webhooks/{webhook['id']}", headers=headers).json["consecutive_failures"] == 1

    client.post("/api/tasks", json=TASK, headers=headers)
    drain()
    shown = client.get(f"/api/webhooks/{webhook['id']}", headers=headers).json
    assert shown["active"] is False and shown["consecutive_failures"] == 2
    told = db.session.scalars(sa.select(Notification.user_id).where(Notification.type == "webhook_disabled")).all()
    assert sorted(told) == sorted([admin.id, other_admin.id])
    assert len(receiver.requests) == 4

    client.post("/api/tasks", json=TASK, headers=headers)  # a disabled webhook gets nothing
    assert len(deliveries(client, headers, webhook["id"])) == 2

    first_id = first[0]["id"]
    refused = client.post(f"/api/webhooks/{webhook['id']}/deliveries/{first_id}/redeliver", headers=headers)
    assert refused.status_code == 409

    enabled = client.put(f"/api/webhooks/{webhook['id']}", json={"active": True}, headers=headers).json
    assert enabled["active"] is True and enabled["consecutive_failures"] == 0


def test_deliveries_are_listed_newest_first_and_can_be_redelivered(client, admin, auth_headers, receiver):
    headers = auth_headers(admin)
    webhook = create_webhook(client, headers, receiver.url, events=["*"])
    task = client.post("/api/tasks", json=TASK, headers=headers).json
    client.put(
        f"/api/tasks/{task['id']}", json={"entity_name": "Acme Ltd", "version": task["version"]}, headers=headers
    )
    drain()
    listed = deliveries(client, headers, webhook["id"])
    assert [item["event"] for item in listed] == ["task_updated", "task_created"]

    first = listed[1]
    response = client.post(f"/api/webhooks/{webhook['id']}/deliveries/{first['id']}/redeliver", headers=headers)
    assert response.status_code == 202 and response.json["status"] == "pending"
    drain()
    again = next(item for item in deliveries(client, headers, webhook["id"]) if item["id"] == first["id"])
    assert again["status"] == "delivered" and again["attempts"] == 2
    sent_ids = [request_headers["X-FinStack-Event-Id"] for _, request_headers, _ in receiver.requests]
    assert sent_ids.count(first["event_id"]) == 2

    other = create_webhook(client, headers, receiver.url)
    missing = client.post(f"/api/webhooks/{other['id']}/deliveries/{first['id']}/redeliver", headers=headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.20.30.40/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_internal_targets_are_refused(app, client, admin, auth_headers, url):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    headers = auth_headers(admin)
    response = client.post("/api/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
    assert response.status_code == 422, response.json
    assert set(response.json) >= {"error", "details"} and "url" in response.json["details"]

    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    allowed = create_webhook(client, headers, "http://127.0.0.1:9/fine")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    changed = client.put(f"/api/webhooks/{allowed['id']}", json={"url": url}, headers=headers)
    assert changed.status_code == 422


def test_internal_targets_are_refused_at_delivery_time_and_redirects_are_not_followed(
    app, client, admin, auth_headers, receiver
):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    headers = auth_headers(admin)
    webhook = create_webhook(client, headers, receiver.url)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False  # the receiver's 127.0.0.1 is refused now
    client.post("/api/tasks", json=TASK, headers=headers)
    drain()
    (refused,) = deliveries(client, headers, webhook["id"])
    assert refused["status"] == "failed" and refused["response_code"] is None
    assert "127.0.0.1" in refused["error"] and receiver.requests == []

    app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # reach the receiver, which redirects to a private address
    receiver.answers = [302]
    receiver.location = "http://10.0.0.1/internal"
    client.post("/api/tasks", json=TASK, headers=headers)
    drain()
    redirected = deliveries(client, headers, webhook["id"])[0]
    assert redirected["status"] == "failed" and redirected["response_code"] == 302
    assert "Redirect" in redirected["error"] and len(receiver.requests) == 1


def test_a_rolled_back_write_publishes_nothing(client, admin, auth_headers, receiver):
    webhook = create_webhook(client, auth_headers(admin), receiver.url, events=["*"])
    webhooks.publish("task_created", {"id": "nothing"})
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).where(Job.kind == "webhook")) == 0

    client.post("/api/projects", json={"name": "Hooked", "key": "hk"}, headers=auth_headers(admin))
    assert [item["event"] for item in deliveries(client, auth_headers(admin), webhook["id"])] == ["project_created"]


def test_ticket_events_are_published_in_the_staff_view(client, admin, member, auth_headers, receiver):
    webhook = create_webhook(client, auth_headers(admin), receiver.url, events=["ticket_created", "ticket_updated"])
    body = {"title": "VPN is down", "description": "The vpn drops every minute since Monday.", "urgency": "high"}
    ticket = client.post("/api/tickets", json=body, headers=auth_headers(member)).json
    closed = client.patch(
        f"/api/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=auth_headers(member)
    )
    assert closed.status_code == 200, closed.json
    drain()
    sent = [json.loads(body) for _, _, body in receiver.requests]
    assert sorted(event["event"] for event in sent) == ["ticket_created", "ticket_updated"]
    assert {event["data"]["id"] for event in sent} == {ticket["id"]}
    assert all("routing" in event["data"] for event in sent)
    assert len(deliveries(client, auth_headers(admin), webhook["id"])) == 2
