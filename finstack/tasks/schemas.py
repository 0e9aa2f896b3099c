from datetime import UTC, datetime

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from finstack.core.schemas import (
    AwareDateTime,
    BaseSchema,
    DateOrDateTime,
    DateRangeQuery,
    NotBlank,
    PageQuery,
    PlainDump,
    WholeNumber,
)
from finstack.tasks.models import MAX_TAGS, PRIORITIES, STATUSES, TAG_MAX_LENGTH
from finstack.users.schemas import UserBrief

SORTABLE = ("date_created", "task_time", "entity_name", "task_type", "status", "priority", "updated_at")
RELEVANCE = "relevance"
SEARCH_MAX_LENGTH = 200
MAX_BULK = 500

ENTITY_NAME = validate.Length(min=1, max=200)
TASK_TYPE = validate.Length(min=1, max=100)
NOTE = validate.Length(max=5000)
# Every instant that exists in UTC; an offset that pushes a value past year 1 or 9999 is a 400, not an overflow.
TASK_TIME = validate.Range(
    min=datetime.min.replace(tzinfo=UTC),
    max=datetime.max.replace(tzinfo=UTC),
    error="Must lie between years 1 and 9999 in UTC.",
)


class TagName(fields.String):
    """A tag: stripped and lower-cased, then 1-40 characters."""

    def __init__(self, **kwargs):
        super().__init__(validate=[NotBlank(), validate.Length(min=1, max=TAG_MAX_LENGTH)], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


class TagList(fields.List):
    """A task's tags: at most 20 given, duplicates (after normalising) collapsed, sorted."""

    def __init__(self, **kwargs):
        super().__init__(TagName(), validate=validate.Length(max=MAX_TAGS), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return sorted(set(super()._deserialize(value, attr, data, **kwargs)))


class SearchText(fields.String):
    """Search words: stripped, then 1-200 characters."""

    def __init__(self, **kwargs):
        super().__init__(validate=[NotBlank(), validate.Length(min=1, max=SEARCH_MAX_LENGTH)], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


TAGS_DESCRIPTION = "Stripped and lower-cased, each 1-40 characters, at most 20; duplicates collapsed"

MAX_REMINDERS = 10
# Up to 366 days ahead of task_time.
MAX_BEFORE_MINUTES = 366 * 24 * 60
REPEAT_UNITS = ("day", "week", "month")


class ReminderIn(BaseSchema):
    before_minutes = WholeNumber(
        validate=validate.Range(min=0, max=MAX_BEFORE_MINUTES), metadata={"description": "Minutes before task_time"}
    )
    at = AwareDateTime(validate=TASK_TIME, metadata={"description": "A fixed instant"})

    @validates_schema
    def _one_kind(self, data, **kwargs):
        if len(data) != 1:
            raise ValidationError("Give exactly one of before_minutes and at.")


class ReminderOut(PlainDump, BaseSchema):
    before_minutes = fields.Integer(required=True, allow_none=True, metadata={"description": "null: absolute"})
    at = AwareDateTime(required=True, metadata={"description": "When it is sent (computed for relative ones)"})
    sent_at = AwareDateTime(required=True, allow_none=True)


class RepeatIn(BaseSchema):
    every = fields.String(required=True, validate=validate.OneOf(REPEAT_UNITS))
    interval = WholeNumber(load_default=1, validate=validate.Range(min=1, max=366))
    weekdays = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0, max=6)),
        validate=validate.Length(min=1, max=7),
        metadata={"description": "every=week only: 0 Monday … 6 Sunday"},
    )
    month_day = WholeNumber(
        validate=validate.Range(min=1, max=31),
        metadata={"description": "every=month only; past a shorter month's end: its last day"},
    )
    # `from` is a Python keyword: the loaded key is "from" all the same (data_key).
    from_ = fields.String(
        data_key="from",
        attribute="from",
        load_default="due",
        validate=validate.OneOf(("due", "completion")),
        metadata={"description": "Count from the task's task_time (due) or from when it was closed (completion)"},
    )

    @validates_schema
    def _fits_unit(self, data, **kwargs):
        if "weekdays" in data and data["every"] != "week":
            raise ValidationError("weekdays only go with every=week.", "weekdays")
        if "month_day" in data and data["every"] != "month":
            raise ValidationError("month_day only goes with every=month.", "month_day")

    @post_load
    def _normalise(self, data, **kwargs):
        if "weekdays" in data:
            data["weekdays"] = sorted(set(data["weekdays"]))
        return data


class RepeatOut(PlainDump, BaseSchema):
    every = fields.String(required=True)
    interval = fields.Integer(required=True)
    # Always present (null where the rule has none), as every field of a response is.
    weekdays = fields.List(fields.Integer(), allow_none=True, dump_default=None)
    month_day = fields.Integer(allow_none=True, dump_default=None)
    from_ = fields.String(data_key="from", attribute="from", required=True)


REMINDERS_FIELD = {
    "validate": validate.Length(max=MAX_REMINDERS),
    "metadata": {"description": "At most 10: {before_minutes} relative to task_time or {at}; sent to the assignee"},
}
REPEAT_DESCRIPTION = "Closing or cancelling the task creates its next occurrence (once); null: not recurring"


class TaskOut(PlainDump, BaseSchema):
    id = fields.UUID()
    entity_name = fields.String()
    task_type = fields.String()
    task_time = AwareDateTime()
    contact_person_id = fields.UUID(allow_none=True)
    contact_person = fields.Nested(UserBrief, allow_none=True)
    note = fields.String(allow_none=True)
    status = fields.String()
    priority = fields.String()
    created_by = fields.UUID()
    creator = fields.Nested(UserBrief)
    date_created = AwareDateTime()
    updated_at = AwareDateTime()
    closed_at = AwareDateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "Send it back on update to refuse lost updates (409)"})
    is_overdue = fields.Boolean(metadata={"description": "task_time has passed and the task is still active"})
    project_id = fields.UUID(required=True, allow_none=True)
    tags = fields.List(fields.String(), required=True, metadata={"description": "Sorted"})
    rank = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The card's place in its board column (byte order, top first); null in no project"},
    )
    reminders = fields.List(fields.Nested(ReminderOut), required=True, metadata={"description": "Soonest first"})
    repeat = fields.Nested(RepeatOut, required=True, allow_none=True)
    series_id = fields.UUID(required=True, allow_none=True, metadata={"description": "Shared by a recurring series"})
    occurrence = fields.Integer(required=True, allow_none=True, metadata={"description": "1 for the first"})


class TrashedTaskOut(TaskOut):
    deleted_at = AwareDateTime(metadata={"description": "When the task was moved to the trash"})
    deleted_by = fields.UUID(metadata={"description": "Who moved it there"})


class TaskCreate(BaseSchema):
    entity_name = fields.String(required=True, validate=ENTITY_NAME)
    task_type = fields.String(required=True, validate=TASK_TYPE)
    task_time = AwareDateTime(required=True, validate=TASK_TIME)
    contact_person_id = fields.UUID(allow_none=True, load_default=None)
    note = fields.String(allow_none=True, validate=NOTE, load_default=None)
    status = fields.String(validate=validate.OneOf(STATUSES), load_default="open")
    priority = fields.String(validate=validate.OneOf(PRIORITIES), load_default="medium")
    project_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "An active project you are a manager or member of (managers and admins: any)"},
    )
    tags = TagList(load_default=list, metadata={"description": TAGS_DESCRIPTION})
    reminders = fields.List(fields.Nested(ReminderIn), load_default=list, **REMINDERS_FIELD)
    repeat = fields.Nested(RepeatIn, allow_none=True, load_default=None, metadata={"description": REPEAT_DESCRIPTION})


class TaskUpdate(BaseSchema):
    entity_name = fields.String(validate=ENTITY_NAME)
    task_type = fields.String(validate=TASK_TYPE)
    task_time = AwareDateTime(validate=TASK_TIME)
    contact_person_id = fields.UUID(allow_none=True)
    note = fields.String(allow_none=True, validate=NOTE)
    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    project_id = fields.UUID(allow_none=True)
    tags = TagList(metadata={"description": TAGS_DESCRIPTION + "; replaces the task's tags"})
    reminders = fields.List(fields.Nested(ReminderIn), **REMINDERS_FIELD)
    repeat = fields.Nested(RepeatIn, allow_none=True, metadata={"description": REPEAT_DESCRIPTION})
    version = WholeNumber(validate=validate.Range(min=1))

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not set(data) - {"version"}:
            raise ValidationError("Give at least one field to change.")


class StatusChange(BaseSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    version = WholeNumber(validate=validate.Range(min=1))


class MoveIn(BaseSchema):
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "The target column"})
    new_status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "Synonym of status"})
    after_id = fields.UUID(metadata={"description": "Place the card right below this card of the target column"})
    before_id = fields.UUID(metadata={"description": "Place the card right above this card of the target column"})
    version = WholeNumber(validate=validate.Range(min=1))

    @validates_schema
    def _one_status(self, data, **kwargs):
        given = {data[field] for field in ("status", "new_status") if field in data}
        if not given:
            raise ValidationError("Give the target column as status (or new_status).", "status")
        if len(given) > 1:
            raise ValidationError("status and new_status differ; give one.", "new_status")

    @post_load
    def _synonym(self, data, **kwargs):
        data["status"] = data.pop("new_status", None) or data["status"]
        return data


class BoardQuery(BaseSchema):
    per_column = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=200), metadata={"description": "Cards per column"}
    )
    include_cancelled = fields.Boolean(load_default=False, metadata={"description": "Add the cancelled column"})


class BoardColumnOut(BaseSchema):
    status = fields.String(required=True)
    total = fields.Integer(required=True, metadata={"description": "Cards in the column you may read"})
    items = fields.List(fields.Nested(TaskOut), required=True, metadata={"description": "Top first"})


class BoardOut(BaseSchema):
    columns = fields.List(fields.Nested(BoardColumnOut), required=True)


class TaskListQuery(PageQuery, DateRangeQuery):
    PARSE_ONCE = True  # a function of the query string alone, with flat values (see `StrictParser`)

    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    task_type = fields.String(validate=validate.Length(min=1, max=100))
    entity_name = fields.String(validate=validate.Length(min=1, max=200))
    contact_person_id = fields.UUID()
    created_by = fields.UUID()
    overdue = fields.Boolean(metadata={"description": "Only tasks past task_time and still open or in progress"})
    project_id = fields.UUID()
    team_id = fields.UUID(metadata={"description": "Tasks of the team's projects"})
    no_project = fields.Boolean(metadata={"description": "true: only tasks in no project; false: only tasks in one"})
    tag = fields.List(
        TagName(),
        validate=validate.Length(max=MAX_TAGS),
        metadata={"description": "Repeatable (`tag=a&tag=b`): tasks carrying every tag given"},
    )
    due_from = DateOrDateTime(metadata={"description": "task_time at or after"})
    due_to = DateOrDateTime(end_of_day=True, metadata={"description": "task_time at or before (a bare date: all day)"})
    q = SearchText(
        metadata={
            "description": "Words searched in entity_name, task_type, note and tags: every word must match, the last "
            "one also as a prefix; operators and quotes are plain text"
        }
    )
    sort_by = fields.String(
        validate=validate.OneOf((*SORTABLE, RELEVANCE)),
        load_default="date_created",
        metadata={"description": "`relevance` (best match first with the default `desc`) only together with `q`"},
    )
    sort_order = fields.String(validate=validate.OneOf(("asc", "desc")), load_default="desc")

    @validates_schema
    def _project_or_none(self, data, **kwargs):
        if data.get("no_project") and (data.get("project_id") or data.get("team_id")):
            raise ValidationError("no_project=true cannot be combined with project_id or team_id.", "no_project")

    @validates_schema
    def _due_from_before_due_to(self, data, **kwargs):
        if data.get("due_from") and data.get("due_to") and data["due_from"] > data["due_to"]:
            raise ValidationError("due_from must not be after due_to.", "due_to")

    @validates_schema
    def _relevance_needs_words(self, data, **kwargs):
        if data.get("sort_by") == RELEVANCE and not data.get("q"):
            raise ValidationError("sort_by=relevance needs q.", "sort_by")


class BulkStatusIn(BaseSchema):
    task_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=MAX_BULK))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class BulkResultOut(BaseSchema):
    updated = fields.List(fields.UUID())
    not_found = fields.List(fields.UUID())
    forbidden = fields.List(fields.UUID())


class CancelIn(BaseSchema):
    version = WholeNumber(validate=validate.Range(min=1))


class BulkIdsIn(BaseSchema):
    task_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=MAX_BULK))


class BulkUpdateIn(BulkIdsIn):
    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    contact_person_id = fields.UUID(allow_none=True)

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not set(data) - {"task_ids"}:
            raise ValidationError("Give status, priority or contact_person_id to change.")


class BulkDeleteOut(BaseSchema):
    deleted = fields.List(fields.UUID())
    not_found = fields.List(fields.UUID())
