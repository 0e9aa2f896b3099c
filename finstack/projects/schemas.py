from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery
from finstack.projects.models import PROJECT_ROLES, PROJECT_STATUSES, VISIBILITIES
from finstack.users.schemas import UserBrief

NAME = validate.And(validate.Length(min=1, max=200), NotBlank())
KEY = validate.Regexp(r"^[A-Za-z0-9]{2,10}$", error="2 to 10 letters or digits, such as FIN.")
DESCRIPTION = validate.Length(max=5000)


class ProjectOut(BaseSchema):
    id = fields.UUID(required=True)
    key = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    visibility = fields.String(required=True)
    team_id = fields.UUID(required=True, allow_none=True)
    start_date = fields.Date(required=True, allow_none=True)
    due_date = fields.Date(required=True, allow_none=True)
    created_by = fields.UUID(required=True)
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class ProjectInput(BaseSchema):
    """Keys are stored upper-cased: `fin` and `FIN` are the same key."""

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("key"):
            data["key"] = data["key"].upper()
        if data.get("name"):
            data["name"] = data["name"].strip()
        return data

    @validates_schema
    def _due_after_start(self, data, **kwargs):
        if data.get("start_date") and data.get("due_date") and data["due_date"] < data["start_date"]:
            raise ValidationError("due_date must not be before start_date.", "due_date")


class ProjectCreate(ProjectInput):
    name = fields.String(required=True, validate=NAME)
    key = fields.String(required=True, validate=KEY)
    description = fields.String(allow_none=True, validate=DESCRIPTION, load_default=None)
    status = fields.String(validate=validate.OneOf(PROJECT_STATUSES), load_default="active")
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES), load_default="open")
    team_id = fields.UUID(allow_none=True, load_default=None)
    start_date = fields.Date(allow_none=True, load_default=None)
    due_date = fields.Date(allow_none=True, load_default=None)


class ProjectUpdate(ProjectInput):
    name = fields.String(validate=NAME)
    key = fields.String(validate=KEY)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    status = fields.String(validate=validate.OneOf(PROJECT_STATUSES))
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
    team_id = fields.UUID(allow_none=True)
    start_date = fields.Date(allow_none=True)
    due_date = fields.Date(allow_none=True)

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class ProjectListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(PROJECT_STATUSES))
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
    team_id = fields.UUID()
    search = fields.String(validate=validate.Length(min=1, max=100), metadata={"description": "In name or key"})


class ProjectDeleteQuery(BaseSchema):
    cascade = fields.Boolean(
        load_default=False, metadata={"description": "Delete the project's tasks too (with their comments and files)"}
    )


class ProjectMemberOut(BaseSchema):
    user_id = fields.UUID(required=True)
    user = fields.Nested(UserBrief, required=True)
    role = fields.String(required=True)
    source = fields.String(
        required=True,
        metadata={"description": "`project`: an explicit membership; `team`: through the project's team"},
    )


class ProjectMemberQuery(PageQuery):
    search = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "In name, username, e-mail"}
    )


class ProjectMemberCreate(BaseSchema):
    user_id = fields.UUID(required=True)
    role = fields.String(validate=validate.OneOf(PROJECT_ROLES), load_default="member")


class ProjectMemberUpdate(BaseSchema):
    role = fields.String(required=True, validate=validate.OneOf(PROJECT_ROLES))


class ProgressOut(BaseSchema):
    total_tasks = fields.Integer(required=True)
    open_tasks = fields.Integer(required=True)
    in_progress_tasks = fields.Integer(required=True)
    completed_tasks = fields.Integer(required=True)
    cancelled_tasks = fields.Integer(required=True)
    overdue_tasks = fields.Integer(required=True)
    progress_percentage = fields.Float(
        required=True, metadata={"description": "Closed tasks over all but cancelled ones, in percent; 0 when none"}
    )
