from flask_jwt_extended import current_user

from finstack.core.schemas import PageQuery, page_of
from finstack.webhooks import bp, service
from finstack.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate


@bp.get("")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(WebhookOut))
def list_webhooks(query):
    """Admins only; newest first."""
    return service.list_webhooks(current_user, **query)


@bp.post("")
@bp.auth_required()
@bp.arguments(WebhookCreate)
@bp.response(201, WebhookCreated)
def create_webhook(data):
    """Admins only. A URL whose host resolves to a non-public address is refused (422) unless
    WEBHOOK_ALLOW_PRIVATE; the answer shows the secret, once."""
    return service.create_webhook(current_user, **data)


@bp.get("/<uuid:webhook_id>")
@bp.auth_required()
@bp.response(200, WebhookOut)
def get_webhook(webhook_id):
    return service.get_webhook(current_user, webhook_id)


@bp.put("/<uuid:webhook_id>")
@bp.auth_required()
@bp.arguments(WebhookUpdate)
@bp.response(200, WebhookOut)
def update_webhook(changes, webhook_id):
    """Fields left out keep their value; turning a webhook back on resets its failure count."""
    return service.update_webhook(current_user, webhook_id, changes)


@bp.delete("/<uuid:webhook_id>")
@bp.auth_required()
@bp.response(204)
def delete_webhook(webhook_id):
    service.delete_webhook(current_user, webhook_id)


@bp.get("/<uuid:webhook_id>/deliveries")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(DeliveryOut))
def list_deliveries(query, webhook_id):
    """Newest first, each with its last attempt's outcome."""
    return service.list_deliveries(current_user, webhook_id, **query)


@bp.post("/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver")
@bp.auth_required()
@bp.response(202, DeliveryOut)
def redeliver(webhook_id, delivery_id):
    """Queue a new attempt of the delivery (same body and event id), with retries of its own."""
    return service.redeliver(current_user, webhook_id, delivery_id)
