from marshmallow import fields, validate

from finstack.core.schemas import BaseSchema


class DashboardQuery(BaseSchema):
    limit = fields.Integer(
        load_default=10,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "How many task types and users to list, largest first"},
    )


class SummaryOut(BaseSchema):
    total_tasks = fields.Integer()
    open_tasks = fields.Integer()
    in_progress_tasks = fields.Integer()
    closed_tasks = fields.Integer()
    cancelled_tasks = fields.Integer()
    overdue_tasks = fields.Integer()


class TypeCountOut(BaseSchema):
    type = fields.String()
    count = fields.Integer()


class UserCountOut(BaseSchema):
    user = fields.String(metadata={"description": "The assignee's full name"})
    user_id = fields.UUID()
    count = fields.Integer()


class DashboardOut(BaseSchema):
    summary = fields.Nested(SummaryOut)
    task_types = fields.List(fields.Nested(TypeCountOut))
    user_tasks = fields.List(fields.Nested(UserCountOut))
    scope = fields.String(metadata={"description": "'all' for managers and admins, 'own' for members"})
