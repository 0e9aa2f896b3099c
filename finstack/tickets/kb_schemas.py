from marshmallow import ValidationError, fields, validate, validates_schema

from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery, WholeNumber
from finstack.tasks.schemas import TAGS_DESCRIPTION, SearchText, TagList
from finstack.tickets.models import ARTICLE_STATUSES
from finstack.tickets.schemas import DepartmentBrief, Stripped
from finstack.users.schemas import UserBrief

ARTICLE_TITLE = validate.And(validate.Length(min=3, max=200), NotBlank())
ARTICLE_BODY = validate.And(validate.Length(min=1, max=50000), NotBlank())
ARTICLE_STATUS = validate.OneOf(ARTICLE_STATUSES)
MAX_ANSWERS = 20


class ArticleOut(BaseSchema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    status = fields.String(required=True, metadata={"description": "`draft` (agents and admins only) or `published`"})
    department = fields.Nested(DepartmentBrief, required=True, allow_none=True)
    author = fields.Nested(UserBrief, required=True, allow_none=True)
    published_at = AwareDateTime(required=True, allow_none=True, metadata={"description": "Last publication"})
    created_at = AwareDateTime(required=True)
    updated_at = AwareDateTime(required=True)


class ArticleCreate(Stripped):
    title = fields.String(required=True, validate=ARTICLE_TITLE)
    body = fields.String(required=True, validate=ARTICLE_BODY)
    tags = TagList(load_default=list, metadata={"description": TAGS_DESCRIPTION})
    status = fields.String(validate=ARTICLE_STATUS, load_default="draft")
    department_id = fields.UUID(allow_none=True, load_default=None)


class ArticleUpdate(Stripped):
    title = fields.String(validate=ARTICLE_TITLE)
    body = fields.String(validate=ARTICLE_BODY)
    tags = TagList(metadata={"description": TAGS_DESCRIPTION + "; replaces the article's tags"})
    status = fields.String(validate=ARTICLE_STATUS)
    department_id = fields.UUID(allow_none=True)

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class ArticleListQuery(PageQuery):
    q = SearchText(metadata={"description": "Words, all of which an article must hold (title, tags, body); best first"})
    status = fields.String(validate=ARTICLE_STATUS)
    department_id = fields.UUID()


class AskIn(BaseSchema):
    query = fields.String(required=True, validate=validate.And(validate.Length(min=1, max=500), NotBlank()))
    limit = WholeNumber(load_default=5, validate=validate.Range(min=1, max=MAX_ANSWERS))


class AnswerOut(BaseSchema):
    source = fields.String(required=True, metadata={"description": "`article` or `ticket`"})
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    snippet = fields.String(required=True, metadata={"description": "Of the body or description, near a word found"})
    score = fields.Float(required=True, metadata={"description": "Higher is better; compare within one answer only"})
    url = fields.String(required=True, metadata={"description": "The API path of the article or ticket"})


class AskOut(BaseSchema):
    answers = fields.List(fields.Nested(AnswerOut), required=True)


class SuggestionsQuery(BaseSchema):
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=MAX_ANSWERS))


class SuggestionsOut(BaseSchema):
    tickets = fields.List(
        fields.Nested(AnswerOut),
        required=True,
        metadata={"description": "Resolved or closed tickets like this one, the same department's first"},
    )
    articles = fields.List(fields.Nested(AnswerOut), required=True, metadata={"description": "Published articles"})
