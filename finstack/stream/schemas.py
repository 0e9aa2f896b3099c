from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class EventQuery(BaseSchema):
    since = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))


class EventOut(BaseSchema):
    seq = fields.Integer()
    event = fields.String()
    data = fields.Dict(attribute="payload")
    created_at = AwareDateTime()


class EventPageOut(BaseSchema):
    """A page of events; `resync` true (with no events, and `last_seq` your latest) when events after `since` are
    past retention."""

    events = fields.List(fields.Nested(EventOut))
    last_seq = fields.Integer()
    has_more = fields.Boolean()
    resync = fields.Boolean()
