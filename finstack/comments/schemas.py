from marshmallow import fields, validate

from finstack.comments.models import MAX_CONTENT
from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery
from finstack.users.schemas import UserBrief


def ContentField(**kwargs):  # noqa: N802 - a field factory
    return fields.String(
        validate=validate.And(validate.Length(min=1, max=MAX_CONTENT), NotBlank()),
        metadata={"description": "Plain text; `@username` mentions notify those users"},
        **kwargs,
    )


class CommentOut(BaseSchema):
    id = fields.UUID()
    task_id = fields.UUID()
    author_id = fields.UUID()
    author = fields.Nested(UserBrief)
    content = fields.String()
    created_at = AwareDateTime()
    updated_at = AwareDateTime()
    edited = fields.Boolean(metadata={"description": "The author changed the text after posting"})
    edited_at = AwareDateTime(allow_none=True)


class CommentCreate(BaseSchema):
    content = ContentField(required=True)


class CommentUpdate(BaseSchema):
    content = ContentField(required=True)


class CommentQuery(PageQuery):
    pass
