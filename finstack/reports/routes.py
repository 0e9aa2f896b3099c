from flask import Response
from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.reports import bp, service
from finstack.reports.schemas import (
    TEAM_OVERVIEW_CSV_FIELDS,
    TeamOverviewOut,
    TeamOverviewQuery,
    UserProductivityOut,
    UserProductivityQuery,
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
