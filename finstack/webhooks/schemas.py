from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, StrictBoolean
from finstack.webhooks.models import ALL_EVENTS, DELIVERY_STATUSES, EVENTS, URL_MAX_LENGTH

URL = validate.And(validate.Length(max=URL_MAX_LENGTH), validate.URL(schemes={"http", "https"}, require_tld=False))


def event_list(**kwargs):
    return fields.List(
        fields.String(validate=validate.OneOf((*EVENTS, ALL_EVENTS))),
        validate=validate.Length(min=1, max=len(EVENTS) + 1),
        metadata={"description": 'Events to receive (README "Webhooks" lists them); `*`: every event'},
        **kwargs,
    )


SECRET = fields.String(
    load_only=True,
    validate=validate.Length(min=16, max=200),
    metadata={"description": "HMAC key of the signature; write-only (generated when left out at creation)"},
)


class WebhookOut(BaseSchema):
    id = fields.UUID(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    consecutive_failures = fields.Integer(
        required=True, metadata={"description": "Deliveries in a row that failed for good (reset by a success)"}
    )
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class WebhookCreated(WebhookOut):
    secret = fields.String(required=True, metadata={"description": "Shown once, here"})


class WebhookCreate(BaseSchema):
    url = fields.String(required=True, validate=URL)
    events = event_list(required=True)
    secret = SECRET
    active = StrictBoolean(load_default=True)


class WebhookUpdate(BaseSchema):
    url = fields.String(validate=URL)
    events = event_list()
    secret = SECRET
    active = StrictBoolean()


class DeliveryOut(BaseSchema):
    id = fields.UUID(required=True)
    webhook_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    event = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": "pending (not sent yet, or a retry is due), delivered (2xx), failed (gave up)"},
    )
    attempts = fields.Integer(required=True)
    response_code = fields.Integer(required=True, allow_none=True, metadata={"description": "Of the last attempt"})
    duration_ms = fields.Integer(required=True, allow_none=True, metadata={"description": "Of the last attempt"})
    error = fields.String(required=True, allow_none=True, metadata={"description": "Of the last attempt"})
    created_at = AwareDateTime(required=True)
    last_attempt_at = AwareDateTime(required=True, allow_none=True)
