from marshmallow import fields

from finstack.core.schemas import AwareDateTime, BaseSchema, PageQuery, StrictBoolean
from finstack.notifications.models import NOTIFICATION_TYPES


class NotificationOut(BaseSchema):
    id = fields.UUID()
    type = fields.String()
    title = fields.String()
    message = fields.String()
    task_id = fields.UUID(allow_none=True)
    ticket_id = fields.UUID(allow_none=True)
    actor_id = fields.UUID(allow_none=True)
    is_read = fields.Boolean()
    created_at = AwareDateTime()
    read_at = AwareDateTime(allow_none=True)


class NotificationQuery(PageQuery):
    unread_only = fields.Boolean(load_default=False)
    since = fields.UUID(metadata={"description": "Only notifications after this one, oldest first (catch-up)"})


class UnreadCountOut(BaseSchema):
    count = fields.Integer()


class ReadAllOut(BaseSchema):
    updated = fields.Integer()


EmailPreferences = BaseSchema.from_dict({kind: StrictBoolean() for kind in NOTIFICATION_TYPES}, name="EmailPreferences")
# The same fields as a response, where every type is always present (documented required).
EmailPreferencesOut = BaseSchema.from_dict(
    {kind: fields.Boolean() for kind in NOTIFICATION_TYPES}, name="EmailPreferencesOut"
)
