from flask import Response
from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.reports import bp, helpdesk, projects, service
from finstack.reports.schemas import (
    HELPDESK_TABLE_SCHEMAS,
    PROJECT_TABLE_SCHEMAS,
    TEAM_OVERVIEW_CSV_FIELDS,
    HelpdeskReportOut,
    HelpdeskReportQuery,
    ProjectReportOut,
    ProjectReportQuery,
    TeamOverviewOut,
    TeamOverviewQuery,
    TeamPerformanceOut,
    TeamPerformanceQuery,
    UserProductivityOut,
    UserProductivityQuery,
    WorkloadOut,
    WorkloadQuery,
    csv_chunks,
)

# `?format=csv` answers text/csv: documented beside the JSON body of the same 200.
CSV = {
    "schema": {"type": "string"},
    "content_type": "text/csv",
    "description": "JSON, or `text/csv` with `format=csv`",
    "success": True,
}


def _csv_response(filename, chunks):
    return Response(
        chunks,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/user-productivity")
@bp.auth_required()
@bp.arguments(UserProductivityQuery, location="query")
@bp.response(200, page_of(UserProductivityOut))
@bp.alt_response(200, **CSV)
def user_productivity(query):
    """Per-user productivity (000's metrics), one row per active user, best score first by default.

    Members get only their own row. `date_from`/`date_to` limit the tasks counted by `date_created`.
    `format=csv` answers `text/csv`: a header row with the item fields, then every row, not paged
    (`page` and `per_page` are ignored).
    """
    output = query.pop("format")
    if output == "csv":
        query.pop("page")
        query.pop("per_page")
        query.pop("cursor")
        rows = service.user_productivity_rows(current_user, **query)
        return _csv_response("user-productivity.csv", csv_chunks(UserProductivityOut(), rows))
    return service.user_productivity(current_user, **query)


@bp.get("/team-overview")
@bp.auth_required()
@bp.arguments(TeamOverviewQuery, location="query")
@bp.response(200, TeamOverviewOut)
@bp.alt_response(200, **CSV)
def team_overview(query):
    """Team totals, the mean productivity score over active users, and the top and bottom performers.

    Managers and admins only. `format=csv` answers `text/csv` with the totals: a header row and one row.
    """
    output = query.pop("format")
    overview = service.team_overview(current_user, **query)
    if output == "csv":
        chunks = csv_chunks(TeamOverviewOut(), [overview], columns=TEAM_OVERVIEW_CSV_FIELDS)
        return _csv_response("team-overview.csv", chunks)
    return overview


@bp.get("/project/<uuid:project_id>")
@bp.auth_required()
@bp.arguments(ProjectReportQuery, location="query")
@bp.response(200, ProjectReportOut)
@bp.alt_response(200, **CSV)
def project_report(query, project_id):
    """A project's progress, its tasks by priority and by assignee, and tasks created and closed per week.

    Whoever may read the project (404 otherwise). `format=csv` answers one table of the report, chosen by `table`
    (`by_assignee`, `by_priority` or `weekly`): a header row with its fields, then its rows.
    """
    report = projects.project_report(current_user, project_id, weeks=query["weeks"])
    if query["format"] == "csv":
        table = query["table"]
        return _csv_response(f"project-{table}.csv", csv_chunks(PROJECT_TABLE_SCHEMAS[table](), report[table]))
    return report


@bp.get("/team-performance")
@bp.auth_required()
@bp.arguments(TeamPerformanceQuery, location="query")
@bp.response(200, page_of(TeamPerformanceOut))
@bp.alt_response(200, **CSV)
def team_performance(query):
    """Per assignee: tasks held, completed, in progress, open, cancelled, completion rate and median hours to close.

    Managers and admins see every assignee; members their own row, or with `team_id` of a team they manage its
    members' rows. `date_from`/`date_to` limit the tasks counted by `date_created`. By name. `format=csv` answers
    every row, unpaged.
    """
    output = query.pop("format")
    if output == "csv":
        query.pop("page")
        query.pop("per_page")
        query.pop("cursor")
        rows = projects.team_performance_rows(current_user, **query)
        return _csv_response("team-performance.csv", csv_chunks(TeamPerformanceOut(), rows))
    return projects.team_performance(current_user, **query)


@bp.get("/workload")
@bp.auth_required()
@bp.arguments(WorkloadQuery, location="query")
@bp.response(200, page_of(WorkloadOut))
@bp.alt_response(200, **CSV)
def workload(query):
    """Per assignee: open and in-progress tasks, by status, by priority, overdue, in all; the busiest first.

    Visible as the team performance is. `format=csv` answers every row, unpaged.
    """
    output = query.pop("format")
    if output == "csv":
        query.pop("page")
        query.pop("per_page")
        query.pop("cursor")
        return _csv_response("workload.csv", csv_chunks(WorkloadOut(), projects.workload_rows(current_user, **query)))
    return projects.workload(current_user, **query)


@bp.get("/helpdesk")
@bp.auth_required()
@bp.arguments(HelpdeskReportQuery, location="query")
@bp.response(200, HelpdeskReportOut)
@bp.alt_response(200, **CSV)
def helpdesk_report(query):
    """Per department: tickets created in the range by status, median resolution hours, average feedback; per agent:
    active tickets now.

    Admins see every department, department leads the ones they lead; others 403. `format=csv` answers one table,
    chosen by `table` (`departments` or `agents`): a header row with its fields, then its rows.
    """
    output, table = query.pop("format"), query.pop("table")
    report = helpdesk.helpdesk_report(current_user, **query)
    if output == "csv":
        return _csv_response(f"helpdesk-{table}.csv", csv_chunks(HELPDESK_TABLE_SCHEMAS[table](), report[table]))
    return report
