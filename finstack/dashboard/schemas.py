from marshmallow import fields

from finstack.core.schemas import BaseSchema
from finstack.notifications.schemas import NotificationOut
from finstack.tasks.schemas import TaskOut


class OpenByStatusOut(BaseSchema):
    open = fields.Integer()
    in_progress = fields.Integer()


class TaskSampleOut(BaseSchema):
    count = fields.Integer(metadata={"description": "How many there are in all"})
    items = fields.List(fields.Nested(TaskOut), metadata={"description": "The first few"})


class ProjectProgressOut(BaseSchema):
    id = fields.UUID()
    key = fields.String()
    name = fields.String()
    progress_percentage = fields.Float(metadata={"description": "Closed over all but cancelled, in percent"})
    open_tasks = fields.Integer(metadata={"description": "Status open"})
    in_progress_tasks = fields.Integer()


class PersonalDashboardOut(BaseSchema):
    recent_tasks = fields.List(
        fields.Nested(TaskOut), metadata={"description": "The 5 newest tasks I created or hold, newest first"}
    )
    my_open_by_status = fields.Nested(OpenByStatusOut, metadata={"description": "The active tasks I hold"})
    due_soon = fields.Nested(
        TaskSampleOut,
        metadata={"description": "Active tasks I hold due in the next 7 days; the 10 soonest first"},
    )
    overdue = fields.Nested(
        TaskSampleOut, metadata={"description": "Active tasks I hold whose time has passed; the 5 most overdue first"}
    )
    projects = fields.List(
        fields.Nested(ProjectProgressOut),
        metadata={"description": "Up to 10 active projects I am a member of (explicitly or through a team), by name"},
    )
    unread_notifications = fields.Integer()
    latest_notifications = fields.List(fields.Nested(NotificationOut), metadata={"description": "Newest 5"})
