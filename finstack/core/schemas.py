"""Marshmallow base schemas and fields shared by every domain."""

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from functools import partial

from marshmallow import RAISE, Schema, ValidationError, fields, missing, pre_load, validate, validates_schema
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from werkzeug.datastructures import FileStorage

from finstack.core.error_codes import ERROR_CODES

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_CURSOR_LENGTH = 2000


# Text PostgreSQL cannot store: NUL, and UTF-16 surrogates (a lone one survives JSON decoding; a valid pair does not).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Text must not contain NUL characters or unpaired UTF-16 surrogates."


def has_unstorable_text(value):
    """Whether `value`, or any key, string or uploaded file name nested in it, holds text the database cannot store."""
    pending = [value]
    while pending:  # a loop, not recursion: input may be nested as deep as the JSON decoder allows
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, FileStorage):
            pending.append(item.filename or "")
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class NotBlank(validate.Validator):
    """Refuses text that is empty or only whitespace; `openapi` is how the spec documents it."""

    error = "Must not be blank."
    openapi = {"pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"}  # something besides whitespace, and no NUL

    def __call__(self, value):
        if value is not None and not value.strip():
            raise ValidationError(self.error)
        return value


def unstorable_text_errors(data):
    """Marshmallow-style messages naming each top-level field of `data` that holds unstorable text (else `{}`).

    A bad key, or bad data that is not an object, is reported under `_schema`.
    """
    if not isinstance(data, Mapping):
        return {"_schema": [UNSTORABLE_MESSAGE]} if has_unstorable_text(data) else {}
    errors = {}
    for key, value in data.items():
        if has_unstorable_text(key):
            errors["_schema"] = [UNSTORABLE_MESSAGE]
        elif has_unstorable_text(value):
            errors[key] = [UNSTORABLE_MESSAGE]
    return errors


class BaseSchema(Schema):
    """Every schema rejects fields it does not know, and text the database cannot store.

    PostgreSQL cannot store NUL or lone surrogates in text (the driver raises), so they are refused as bad input
    wherever a schema loads: JSON bodies, query strings, form fields, uploaded file names, Socket.IO payloads.
    """

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_unstorable_text(self, data, **kwargs):
        errors = unstorable_text_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


def _plain_converter(field):
    """A function doing what `field._serialize` does to a value that is not None, for the plain field types a list
    shows on every row (and nested PlainDump schemas without dump hooks, lists of either); None for other fields
    (they keep `field._serialize`)."""
    kind = type(field)
    if kind is fields.String or kind is fields.UUID:
        return str
    if kind is fields.Integer and not field.as_string:
        return int
    if kind is fields.AwareDateTime or kind is fields.DateTime:
        return field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
    if kind is fields.Nested and isinstance(field.schema, PlainDump) and not field.schema.many:
        schema = field.schema
        if not (schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]):  # then `dump` is `_serialize`
            return partial(schema._serialize, many=field.many)
    if kind is fields.List:
        convert = _plain_converter(field.inner)
        if convert is not None:  # None items stay None, as `field.inner._serialize` leaves them
            return lambda values: [None if value is None else convert(value) for value in values]
    return None


def _dump_value(result, key, attr_name, obj, field, convert, value):
    """One field of a PlainDump, as marshmallow dumps it: `value` read from the dict `obj` (`missing` if absent)."""
    if value is missing:
        default = field.dump_default
        value = default() if callable(default) else default
        if value is missing:
            return
    if value is None:
        pass
    elif convert is not None:
        value = convert(value)
    else:
        value = field._serialize(value, attr_name, obj)
    if value is not missing:
        result[key] = value


def _compile_plain_dump(schema):
    """`schema`'s dump of a dict as one function of straight-line code, generated once: per field, its value read
    with `dict.get` and, when the field has a plain converter, written inline (None as None, anything else converted);
    anything else (absent values and dump defaults, fields without a converter) goes through `_dump_value`,
    and a field that does not read a plain key of the dict (a dotted attribute, a method field) through
    `field.serialize`, as marshmallow does. The source holds only the reprs of key strings; fields and converters are
    names in its namespace."""
    namespace = {"missing": missing, "dump_value": _dump_value, "get_attribute": schema.get_attribute}
    lines = ["def dump(obj):", "    get = obj.get", "    result = {}"]
    for index, (attr_name, field) in enumerate(schema.dump_fields.items()):
        key = field.data_key if field.data_key is not None else attr_name
        lookup = field.attribute or attr_name
        namespace[f"field_{index}"] = field
        if not field._CHECK_ATTRIBUTE or "." in lookup:
            lines += [
                f"    value = field_{index}.serialize({attr_name!r}, obj, accessor=get_attribute)",
                f"    if value is not missing: result[{key!r}] = value",
            ]
            continue
        convert = namespace[f"convert_{index}"] = _plain_converter(field)
        lines.append(f"    value = get({lookup!r}, missing)")
        slow = f"dump_value(result, {key!r}, {attr_name!r}, obj, field_{index}, convert_{index}, value)"
        if convert is None:
            lines.append(f"    {slow}")
        else:
            lines += [
                "    if value is None:",
                f"        result[{key!r}] = None",
                "    elif value is missing:",
                f"        {slow}",
                "    else:",
                f"        result[{key!r}] = convert_{index}(value)",
            ]
    lines.append("    return result")
    exec("\n".join(lines), namespace)  # our own source, built from the schema's field names
    return namespace["dump"]


class PlainDump:
    """A schema mixin for the hot list responses: a plain dict (as a list service builds for its rows) is dumped
    by a function generated once per schema instance (`_compile_plain_dump`), each field's value read with
    `dict.get` and formatted by a direct converter for the plain types, instead of marshmallow's accessor chain per
    field. The output is what `Schema.dump` gives for the same dict (the schema's fields, data keys, dump defaults
    and nested schemas stay the source of truth); anything but a dict (an ORM object) is dumped by marshmallow as
    always."""

    def _serialize(self, obj, *, many=False):
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        if type(obj) is not dict:
            return super()._serialize(obj, many=many)
        dump = self.__dict__.get("_plain_dump")
        if dump is None:
            dump = self._plain_dump = _compile_plain_dump(self)
        return dump(obj)


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "What went wrong, for people"})
    code = fields.String(
        required=True,
        validate=validate.OneOf(ERROR_CODES),
        metadata={
            "description": "Stable machine-readable code, for programs to branch on:\n\n"
            + "\n".join(f"* `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())
        },
    )
    details = fields.Dict(metadata={"description": "Per-field messages or extra context"})


class MessageSchema(Schema):
    message = fields.String(required=True)


class StrictBoolean(fields.Boolean):
    """A JSON boolean, only `true` or `false`: not 0, 1 or "yes" (which `fields.Boolean` takes), as the spec says."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class WholeNumber(fields.Integer):
    """A JSON whole number: 3 or 3.0, as JSON Schema's `integer` allows; not 2.5 (which `fields.Integer` silently
    truncates to 2), "3" or true."""

    def _deserialize(self, value, attr, data, **kwargs):
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def AwareDateTime(**kwargs):  # noqa: N802 - a field factory, named like the field it returns
    """ISO-8601 datetime; a value without an offset is read as UTC and always dumped with one."""
    return fields.AwareDateTime(format="iso", default_timezone=UTC, **kwargs)


class DateOrDateTime(fields.String):
    """A filter bound: an ISO-8601 date or datetime.

    A bare date stands for the start of that day, or with `end_of_day=True` for its last instant,
    so that `date_to=2024-05-31` includes the whole of 31 May (UTC).
    """

    default_error_messages = {"invalid": "Not a valid ISO-8601 date or datetime."}
    openapi = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}

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
        try:
            if is_bare_date and self.end_of_day:
                parsed = datetime.combine(parsed.date(), time.min, UTC) + timedelta(days=1, microseconds=-1)
            return parsed.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
            raise self.make_error("invalid") from exc


class PageQuery(BaseSchema):
    """`page` (from 1) or `cursor` (a previous page's `next_cursor`), never both; `per_page` either way."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH))

    @validates_schema(pass_original=True)
    def _page_or_cursor(self, data, original, **kwargs):
        if data.get("cursor") is not None and "page" in original:
            raise ValidationError("Send either page or cursor, not both.", "cursor")


class DateRangeQuery(BaseSchema):
    date_from = DateOrDateTime()
    date_to = DateOrDateTime(end_of_day=True)

    @validates_schema
    def _from_before_to(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("date_from must not be after date_to.", "date_to")


class PaginationMeta(Schema):
    page = fields.Integer(required=True, allow_none=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    total_exact = fields.Boolean(required=True)
    pages = fields.Integer(required=True)
    next_cursor = fields.String(required=True, allow_none=True)


_page_schemas = {}


def page_of(item_schema):
    """The list envelope `{"items": [...], "pagination": {...}}` for `item_schema`, one class per item type: a
    PlainDump, so that the items of a PlainDump item schema are dumped straight by its plan, not each through
    marshmallow's `Nested` and `Schema.dump`."""
    name = item_schema.__name__.removesuffix("Schema").removesuffix("Out") + "Page"
    if name not in _page_schemas:
        _page_schemas[name] = type(
            name,
            (PlainDump, Schema),
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "pagination": fields.Nested(PaginationMeta, required=True),
            },
        )
    return _page_schemas[name]
