from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery
from finstack.teams.models import TEAM_ROLES
from finstack.users.schemas import UserBrief

NAME = validate.And(validate.Length(min=1, max=100), NotBlank())
DESCRIPTION = validate.Length(max=2000)


class TeamOut(BaseSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    created_by = fields.UUID(required=True)
    member_count = fields.Integer(required=True)
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class TeamCreate(BaseSchema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION, load_default=None)


class TeamUpdate(BaseSchema):
    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)


class TeamListQuery(PageQuery):
    all_teams = fields.Boolean(
        data_key="all", load_default=False, metadata={"description": "Admins: every team, not only their own"}
    )


class TeamMemberOut(BaseSchema):
    user_id = fields.UUID(required=True)
    user = fields.Nested(UserBrief, required=True)
    role = fields.String(required=True)
    joined_at = AwareDateTime(required=True)


class TeamMemberCreate(BaseSchema):
    user_id = fields.UUID(required=True)
    role = fields.String(validate=validate.OneOf(TEAM_ROLES), load_default="member")


class TeamMemberUpdate(BaseSchema):
    role = fields.String(required=True, validate=validate.OneOf(TEAM_ROLES))
