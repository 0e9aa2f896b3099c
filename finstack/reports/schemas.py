import csv
import io

from marshmallow import fields, validate

from finstack.core.schemas import BaseSchema, DateRangeQuery, PageQuery
from finstack.reports.service import SORTS

FORMATS = ("json", "csv")
CSV_CHUNK_ROWS = 500
# Cells a spreadsheet would run as a formula; such text is exported with a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _format_field():
    return fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "`csv` answers text/csv (a header row, then every row, unpaged)"},
    )


class UserProductivityQuery(PageQuery, DateRangeQuery):
    user_id = fields.UUID(metadata={"description": "Only this user (managers and admins; members get their own)"})
    sort_by = fields.String(
        load_default="productivity_score",
        validate=validate.OneOf(SORTS),
        metadata={"description": "`productivity_score` (highest first, then name) or `user_name` (A to Z)"},
    )
    format = _format_field()


class TeamOverviewQuery(DateRangeQuery):
    limit = fields.Integer(
        load_default=5,
        validate=validate.Range(min=1, max=50),
        metadata={"description": "How many top and bottom performers to list"},
    )
    format = _format_field()


class UserProductivityOut(BaseSchema):
    user_id = fields.UUID()
    user_name = fields.String()
    user_email = fields.String()
    total_tasks_assigned = fields.Integer()
    tasks_completed = fields.Integer()
    tasks_completed_on_time = fields.Integer(metadata={"description": "Closed no later than task_time"})
    overdue_tasks = fields.Integer(metadata={"description": "Open or in progress, task_time passed"})
    average_completion_time_hours = fields.Float(metadata={"description": "Mean closed_at - date_created"})
    productivity_score = fields.Float(
        metadata={"description": "0-100: 40% completion rate, 30% on-time rate, 30% (100 - overdue rate)"}
    )


class TeamOverviewOut(BaseSchema):
    total_users = fields.Integer(metadata={"description": "Active users"})
    total_tasks = fields.Integer()
    total_completed = fields.Integer()
    total_overdue = fields.Integer()
    average_productivity_score = fields.Float(metadata={"description": "Mean score over active users"})
    top_performers = fields.List(fields.Nested(UserProductivityOut), metadata={"description": "Best first"})
    bottom_performers = fields.List(fields.Nested(UserProductivityOut), metadata={"description": "Worst first"})


TEAM_OVERVIEW_CSV_FIELDS = (
    "total_users",
    "total_tasks",
    "total_completed",
    "total_overdue",
    "average_productivity_score",
)


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_chunks(schema, rows, columns=None):
    """The CSV text of `rows` dumped through `schema`: a header row, then the rows, yielded in chunks."""
    columns = list(columns or schema.fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    dumped = schema.dump(rows, many=True)
    for number, row in enumerate(dumped, start=1):
        writer.writerow([_cell(row[column]) for column in columns])
        if number % CSV_CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
