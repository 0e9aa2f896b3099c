from marshmallow import fields, validate

from finstack.core.schemas import BaseSchema, PageQuery
from finstack.tasks.models import TAG_MAX_LENGTH


class TagListQuery(PageQuery):
    search = fields.String(
        validate=validate.Length(max=TAG_MAX_LENGTH),
        metadata={"description": "Case-insensitive literal substring of the tag; empty: every tag"},
    )


class TagCountOut(BaseSchema):
    tag = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "Tasks you may read that carry the tag"})
