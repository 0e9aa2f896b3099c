from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, DateRangeQuery, PageQuery
from finstack.users.schemas import UserBrief


class ActivityOut(BaseSchema):
    id = fields.UUID()
    action = fields.String(metadata={"description": "e.g. `task.update`, `comment.create`, `task.bulk_status`"})
    entity_type = fields.String(metadata={"description": "What was acted on: `task`, `comment`, `attachment`, …"})
    entity_id = fields.UUID(allow_none=True)
    actor = fields.Nested(UserBrief, allow_none=True, metadata={"description": "null when no user acted"})
    actor_label = fields.String(
        allow_none=True, metadata={"description": "Who acted when no user did, e.g. `cli:root` (the CLI run by root)"}
    )
    changes = fields.Dict(
        metadata={"description": 'As in the audit log: changed fields as `{"from": …, "to": …}`, or a snapshot'}
    )
    created_at = AwareDateTime()


class MyActivityQuery(PageQuery, DateRangeQuery):
    action = fields.String(validate=validate.Length(min=1, max=64))
    entity_type = fields.String(validate=validate.Length(min=1, max=32))
