from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, DateRangeQuery, PageQuery


class AuditLogOut(BaseSchema):
    id = fields.UUID()
    actor_id = fields.UUID(allow_none=True)
    actor_label = fields.String(
        allow_none=True, metadata={"description": "Who acted when no user did, e.g. `cli:root` (the CLI run by root)"}
    )
    action = fields.String()
    entity_type = fields.String()
    entity_id = fields.UUID(allow_none=True)
    changes = fields.Dict()
    ip_address = fields.String(allow_none=True)
    created_at = AwareDateTime()


class AuditLogQuery(PageQuery, DateRangeQuery):
    action = fields.String(validate=validate.Length(min=1, max=64))
    user_id = fields.UUID(metadata={"description": "Entries written by this user"})
    task_id = fields.UUID(metadata={"description": "Entries about this task"})
