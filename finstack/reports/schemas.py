import csv
import io

from marshmallow import fields, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, DateRangeQuery, PageQuery
from finstack.projects.schemas import ProgressOut
from finstack.reports.projects import DEFAULT_WEEKS, MAX_WEEKS
from finstack.reports.service import SORTS
from finstack.tickets.models import STATUSES

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


class ScopeQuery(BaseSchema):
    project_id = fields.UUID(metadata={"description": "Only this project's tasks (a project you may read)"})
    team_id = fields.UUID(
        metadata={
            "description": "Only the tasks of this team's projects (a team you may read); its managers see its "
            "members' rows"
        }
    )


class TeamPerformanceQuery(PageQuery, DateRangeQuery, ScopeQuery):
    format = _format_field()


class WorkloadQuery(PageQuery, ScopeQuery):
    format = _format_field()


PROJECT_TABLES = ("by_assignee", "by_priority", "weekly")


class ProjectReportQuery(BaseSchema):
    weeks = fields.Integer(
        load_default=DEFAULT_WEEKS,
        validate=validate.Range(min=1, max=MAX_WEEKS),
        metadata={"description": "How many weeks `weekly` covers, this one included"},
    )
    format = _format_field()
    table = fields.String(
        load_default="by_assignee",
        validate=validate.OneOf(PROJECT_TABLES),
        metadata={"description": "With `format=csv`: which table of the report the CSV holds"},
    )


class UserRowOut(BaseSchema):
    user_id = fields.UUID()
    username = fields.String()
    full_name = fields.String()


class TeamPerformanceOut(UserRowOut):
    total = fields.Integer(metadata={"description": "Tasks held, whatever their status"})
    completed = fields.Integer(metadata={"description": "Closed"})
    in_progress = fields.Integer()
    open = fields.Integer()
    cancelled = fields.Integer()
    completion_rate = fields.Float(metadata={"description": "completed / (total - cancelled), in percent, 1 decimal"})
    median_hours_to_close = fields.Float(
        allow_none=True, metadata={"description": "Median of closed_at - date_created over closed tasks; null if none"}
    )


class WorkloadOut(UserRowOut):
    open = fields.Integer()
    in_progress = fields.Integer()
    priority_low = fields.Integer(metadata={"description": "Open or in progress, priority low"})
    priority_medium = fields.Integer()
    priority_high = fields.Integer()
    overdue = fields.Integer(metadata={"description": "Open or in progress, task_time passed"})
    total_open = fields.Integer(metadata={"description": "Open or in progress"})


class ProjectSummaryOut(BaseSchema):
    id = fields.UUID()
    key = fields.String()
    name = fields.String()


class PriorityCountsOut(BaseSchema):
    priority = fields.String()
    total = fields.Integer()
    open = fields.Integer()
    in_progress = fields.Integer()
    closed = fields.Integer()
    cancelled = fields.Integer()
    overdue = fields.Integer()


class AssigneeCountsOut(BaseSchema):
    user_id = fields.UUID(allow_none=True, metadata={"description": "null: the unassigned tasks"})
    username = fields.String(allow_none=True)
    full_name = fields.String(allow_none=True)
    total = fields.Integer()
    open = fields.Integer()
    in_progress = fields.Integer()
    closed = fields.Integer()
    overdue = fields.Integer()


class WeekCountsOut(BaseSchema):
    week_start = fields.Date(metadata={"description": "The week's Monday (weeks run Monday to Sunday, UTC)"})
    created = fields.Integer(metadata={"description": "Tasks created that week"})
    closed = fields.Integer(metadata={"description": "Tasks closed that week (and still closed)"})


class ProjectReportOut(BaseSchema):
    project = fields.Nested(ProjectSummaryOut)
    progress = fields.Nested(ProgressOut)
    by_priority = fields.List(fields.Nested(PriorityCountsOut), metadata={"description": "low, medium, high"})
    by_assignee = fields.List(
        fields.Nested(AssigneeCountsOut), metadata={"description": "Most tasks first; the unassigned last among ties"}
    )
    weekly = fields.List(fields.Nested(WeekCountsOut), metadata={"description": "Oldest week first"})


PROJECT_TABLE_SCHEMAS = {
    "by_assignee": AssigneeCountsOut,
    "by_priority": PriorityCountsOut,
    "weekly": WeekCountsOut,
}


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


# --- The helpdesk report -----------------------------------------------------------------------------------------

HELPDESK_TABLES = ("departments", "agents")


class HelpdeskReportQuery(DateRangeQuery):
    department_id = fields.UUID(metadata={"description": "Only this department (a lead: one they lead, else 403)"})
    format = _format_field()
    table = fields.String(
        load_default="departments",
        validate=validate.OneOf(HELPDESK_TABLES),
        metadata={"description": "With `format=csv`: which table of the report the CSV holds"},
    )


HelpdeskDepartmentOut = BaseSchema.from_dict(
    {
        "department_id": fields.UUID(),
        "department": fields.String(),
        "total": fields.Integer(metadata={"description": "Tickets created in the range"}),
        **{status: fields.Integer(metadata={"description": f"Of those, now {status}"}) for status in STATUSES},
        "median_resolution_hours": fields.Float(
            allow_none=True, metadata={"description": "Median of resolved_at - created_at over the resolved ones"}
        ),
        "median_first_response_hours": fields.Float(
            allow_none=True, metadata={"description": "Median of first_responded_at - created_at over those answered"}
        ),
        "sla_compliance": fields.Float(
            allow_none=True,
            metadata={"description": "Percent of the tickets with an SLA clock that met both targets, 2 decimals"},
        ),
        "average_feedback": fields.Float(allow_none=True, metadata={"description": "Mean rating, 2 decimals"}),
        "feedback_count": fields.Integer(),
    },
    name="HelpdeskDepartmentOut",
)


class HelpdeskAgentOut(BaseSchema):
    department_id = fields.UUID()
    department = fields.String()
    user_id = fields.UUID()
    username = fields.String()
    full_name = fields.String()
    role = fields.String()
    active_tickets = fields.Integer(metadata={"description": "Assigned to them in the department and active, now"})


class HelpdeskReportOut(BaseSchema):
    date_from = AwareDateTime(allow_none=True)
    date_to = AwareDateTime(allow_none=True)
    departments = fields.List(fields.Nested(HelpdeskDepartmentOut), metadata={"description": "By name"})
    agents = fields.List(fields.Nested(HelpdeskAgentOut), metadata={"description": "By department, busiest first"})


HELPDESK_TABLE_SCHEMAS = {"departments": HelpdeskDepartmentOut, "agents": HelpdeskAgentOut}
