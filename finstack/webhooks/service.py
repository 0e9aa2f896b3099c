"""Webhooks: admin management, publishing events in the writer's transaction, and the delivery job.

`publish(event, payload)` is called next to a domain's `emit_after_commit` for the same event: it writes one delivery
row and one `webhook` job per active subscriber in the caller's transaction, so a rolled-back write sends nothing
and a committed one is delivered at least once (the event id lets receivers drop a repeat).
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from finstack import jobs
from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.users.models import User
from finstack.webhooks import transport
from finstack.webhooks.models import ALL_EVENTS, Webhook, WebhookDelivery, WebhookEvent

log = logging.getLogger(__name__)

JOB = "webhook"
ERROR_LENGTH = 1000
USER_AGENT = "FinStack-Webhooks/1.0"


def _require_admin(user):
    permissions.require(permissions.can_administer_users(user), "Only admins manage webhooks")


def _vetted_url(url):
    try:
        transport.vet(url, current_app.config["WEBHOOK_ALLOW_PRIVATE"])
    except transport.TargetRefusedError as exc:
        raise ApiError(422, "The webhook URL is refused", {"url": [str(exc)]}) from None
    return url


def _subscriptions(events):
    return [WebhookEvent(event=event) for event in sorted(set(events))]


def create_webhook(actor, *, url, events, secret=None, active=True):
    """The secret is generated when not given; the answer is the only one that shows it."""
    _require_admin(actor)
    webhook = Webhook(
        url=_vetted_url(url),
        secret=secret or secrets.token_hex(32),
        active=active,
        consecutive_failures=0,
        created_by=actor.id,
        subscriptions=_subscriptions(events),
    )
    db.session.add(webhook)
    db.session.commit()
    return webhook


def list_webhooks(actor, *, page, per_page, cursor=None):
    _require_admin(actor)
    statement = sa.select(Webhook).order_by(Webhook.created_at.desc(), Webhook.id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


def get_webhook(actor, webhook_id):
    _require_admin(actor)
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise ApiError(404, "Webhook not found")
    return webhook


def update_webhook(actor, webhook_id, changes):
    """Fields left out keep their value. Turning a webhook back on starts its failure count afresh."""
    webhook = get_webhook(actor, webhook_id)
    if "url" in changes:
        webhook.url = _vetted_url(changes["url"])
    if "events" in changes:
        webhook.subscriptions = _subscriptions(changes["events"])
    if "secret" in changes:
        webhook.secret = changes["secret"]
    if "active" in changes:
        if changes["active"] and not webhook.active:
            webhook.consecutive_failures = 0
        webhook.active = changes["active"]
    db.session.commit()
    return webhook


def delete_webhook(actor, webhook_id):
    """Its deliveries go with it; their jobs, if still queued, find nothing to send."""
    db.session.delete(get_webhook(actor, webhook_id))
    db.session.commit()


def list_deliveries(actor, webhook_id, *, page, per_page, cursor=None):
    """Newest first."""
    webhook = get_webhook(actor, webhook_id)
    statement = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


def redeliver(actor, webhook_id, delivery_id):
    """Send a delivery again, as a new job (its own retries), whatever its status; the body and event id stay."""
    webhook = get_webhook(actor, webhook_id)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise ApiError(404, "Delivery not found")
    if not webhook.active:
        raise ApiError(409, "The webhook is turned off: turn it on to redeliver")
    delivery.status = "pending"
    _enqueue(delivery.id, key=f"webhook:{delivery.id}:{uuid.uuid4()}")
    db.session.commit()
    return delivery


def _enqueue(delivery_id, key):
    jobs.enqueue(JOB, {"delivery_id": str(delivery_id), "since": utcnow().isoformat()}, key=key)


def publish(event, payload):
    """Queue `event` (one of EVENTS) with `payload` for every active webhook subscribed to it, in the caller's
    transaction (no commit). The body is `{id, event, created_at, data}`; `id` is the event's, the same for every
    webhook."""
    publish_many(event, [payload])


def publish_many(event, payloads):
    """`publish` for each of `payloads` (one event each): one query finds the subscribers, one insert writes the
    deliveries, one their jobs."""
    webhook_ids = db.session.scalars(
        sa.select(Webhook.id)
        .join(WebhookEvent, WebhookEvent.webhook_id == Webhook.id)
        .where(Webhook.active.is_(True), WebhookEvent.event.in_((event, ALL_EVENTS)))
        .distinct()
    ).all()
    if not webhook_ids or not payloads:
        return
    now = utcnow()
    deliveries = []
    for payload in payloads:
        event_id = uuid.uuid4()
        body = {"id": str(event_id), "event": event, "created_at": now.isoformat(), "data": payload}
        deliveries.extend(
            {
                "id": uuid.uuid4(),
                "webhook_id": webhook_id,
                "event_id": event_id,
                "event": event,
                "body": body,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
            }
            for webhook_id in webhook_ids
        )
    db.session.execute(sa.insert(WebhookDelivery), deliveries)
    jobs.enqueue_many(
        JOB,
        [({"delivery_id": str(row["id"]), "since": now.isoformat()}, f"webhook:{row['id']}") for row in deliveries],
    )


# --- Delivery ------------------------------------------------------------------------------------------------------


def signature(secret, timestamp, body):
    """`X-FinStack-Signature`'s value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _attempt(webhook, delivery):
    """POST the delivery once. Returns (response code or None, error text or None, duration in ms)."""
    body = json.dumps(delivery.body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-FinStack-Event": delivery.event,
        "X-FinStack-Event-Id": str(delivery.event_id),
        "X-FinStack-Delivery": str(delivery.id),
        "X-FinStack-Signature": signature(webhook.secret, int(time.time()), body),
    }
    started = time.monotonic()
    try:
        target = transport.vet(webhook.url, current_app.config["WEBHOOK_ALLOW_PRIVATE"])
        code = transport.post(target, body, headers, current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    except transport.TargetRefusedError as exc:
        return None, str(exc), round((time.monotonic() - started) * 1000)
    except Exception as exc:  # no response: refused, reset, timed out, TLS, malformed HTTP
        return None, f"{type(exc).__name__}: {exc}", round((time.monotonic() - started) * 1000)
    duration = round((time.monotonic() - started) * 1000)
    if 200 <= code < 300:
        return code, None, duration
    if 300 <= code < 400:
        return code, f"Redirect ({code}) not followed", duration
    return code, f"HTTP {code}", duration


def _gives_up(job):
    config = current_app.config
    age = utcnow() - datetime.fromisoformat(job.payload["since"])
    return job.attempt >= config["WEBHOOK_MAX_ATTEMPTS"] or age >= timedelta(seconds=config["WEBHOOK_MAX_AGE_SECONDS"])


def _set_failures(webhook_id, value):
    """Set the failure count in SQL (concurrent deliveries add up), leaving `updated_at` alone: it dates the admins'
    changes, not the deliveries'. Returns the new count."""
    return db.session.execute(
        sa.update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(consecutive_failures=value, updated_at=Webhook.updated_at)
        .returning(Webhook.consecutive_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def _count_failure(webhook_id):
    """One more delivery failed for good: disable the webhook at WEBHOOK_DISABLE_AFTER in a row, and tell the admins
    (once: only the transaction that turns it off does)."""
    failures = _set_failures(webhook_id, Webhook.consecutive_failures + 1)
    if failures < current_app.config["WEBHOOK_DISABLE_AFTER"]:
        return
    disabled = db.session.execute(
        sa.update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.active.is_(True))
        .values(active=False, updated_at=utcnow())
        .returning(Webhook.url)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if disabled is None:
        return
    admins = db.session.scalars(sa.select(User.id).where(User.role == "admin", User.is_active.is_(True))).all()
    message = f"Webhook {disabled} was turned off after {failures} failed deliveries in a row."
    notify(
        [
            Draft(user_id=admin_id, type="webhook_disabled", title="Webhook disabled", message=message)
            for admin_id in admins
        ]
    )
    log.warning("Webhook %s disabled after %d failed deliveries", webhook_id, failures)


@jobs.handler(JOB, max_attempts="WEBHOOK_MAX_ATTEMPTS", retry_delay="WEBHOOK_RETRY_DELAY")
def deliver(job):
    """One attempt of one delivery, recorded on its row. A failure raises, so the job is retried with the jobs'
    back-off, until the delivery gives up (attempts or age): then it is marked failed and counts toward disabling."""
    delivery = db.session.get(WebhookDelivery, uuid.UUID(job.payload["delivery_id"]))
    webhook = delivery and db.session.get(Webhook, delivery.webhook_id)
    if webhook is None:
        return  # deleted since, with its deliveries
    if not webhook.active:
        delivery.status = "failed"
        delivery.error = "Not sent: the webhook was turned off"
        db.session.commit()
        return
    code, error, duration = _attempt(webhook, delivery)
    delivery.attempts += 1
    delivery.response_code = code
    delivery.duration_ms = duration
    delivery.error = error[:ERROR_LENGTH] if error else None
    delivery.last_attempt_at = utcnow()
    if error is None:
        delivery.status = "delivered"
        if webhook.consecutive_failures:
            _set_failures(webhook.id, 0)
        db.session.commit()
        return
    gives_up = _gives_up(job)
    delivery.status = "failed" if gives_up else "pending"
    if gives_up:
        _count_failure(webhook.id)
    db.session.commit()
    if not gives_up:
        raise RuntimeError(f"Webhook delivery {delivery.id} attempt {delivery.attempts} failed: {error}")
