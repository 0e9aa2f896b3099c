from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, PageQuery, PlainDump, StrictBoolean
from finstack.notifications.models import DELIVERY_MODES, NOTIFICATION_TYPES


class NotificationOut(PlainDump, BaseSchema):
    id = fields.UUID()
    type = fields.String()
    title = fields.String()
    message = fields.String()
    task_id = fields.UUID(allow_none=True)
    ticket_id = fields.UUID(allow_none=True)
    actor_id = fields.UUID(allow_none=True)
    is_read = fields.Boolean()
    count = fields.Integer(metadata={"description": "How many repeats this notification stands for (collapsed)"})
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


class NotificationSettingsIn(BaseSchema):
    delivery_mode = fields.String(validate=validate.OneOf(DELIVERY_MODES))
    chat_group = StrictBoolean()


class NotificationSettingsOut(BaseSchema):
    delivery_mode = fields.String(
        metadata={"description": "E-mail: immediate (after MAIL_GRACE_SECONDS), hourly or daily digest, or off"}
    )
    chat_group = fields.Boolean(metadata={"description": "Notify me of group-chat messages while I am offline"})
