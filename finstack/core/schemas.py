"""Marshmallow base schemas and fields shared by every domain."""

from datetime import UTC, datetime, time, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


class BaseSchema(Schema):
    """Every schema rejects fields it does not know."""

    class Meta:
        unknown = RAISE


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "What went wrong"})
    details = fields.Dict(metadata={"description": "Per-field messages or extra context"})


class MessageSchema(Schema):
    message = fields.String(required=True)


def AwareDateTime(**kwargs):  # noqa: N802 - a field factory, named like the field it returns
    """ISO-8601 datetime; a value without an offset is read as UTC and always dumped with one."""
    return fields.AwareDateTime(format="iso", default_timezone=UTC, **kwargs)


class DateOrDateTime(fields.Field):
    """A filter bound: an ISO-8601 date or datetime.

    A bare date stands for the start of that day, or with `end_of_day=True` for its last instant,
    so that `date_to=2024-05-31` includes the whole of 31 May (UTC).
    """

    default_error_messages = {"invalid": "Not a valid ISO-8601 date or datetime."}

    def __init__(self, *, end_of_day=False, **kwargs):
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        value = value.strip()
        if "T" in value:
            value = value.replace(" ", "+")  # an unencoded "+02:00" arrives as " 02:00"
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        is_bare_date = "T" not in value and ":" not in value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if is_bare_date and self.end_of_day:
            parsed = datetime.combine(parsed.date(), time.min, UTC) + timedelta(days=1, microseconds=-1)
        return parsed.astimezone(UTC)


class PageQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class DateRangeQuery(BaseSchema):
    date_from = DateOrDateTime()
    date_to = DateOrDateTime(end_of_day=True)

    @validates_schema
    def _from_before_to(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("date_from must not be after date_to.", "date_to")


class PaginationMeta(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)


_page_schemas = {}


def page_of(item_schema):
    """The list envelope `{"items": [...], "pagination": {...}}` for `item_schema`, one class per item type."""
    name = item_schema.__name__.removesuffix("Schema").removesuffix("Out") + "Page"
    if name not in _page_schemas:
        _page_schemas[name] = type(
            name,
            (Schema,),
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "pagination": fields.Nested(PaginationMeta, required=True),
            },
        )
    return _page_schemas[name]
