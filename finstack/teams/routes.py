from flask_jwt_extended import current_user

from finstack.core.schemas import PageQuery, page_of
from finstack.teams import bp, service
from finstack.teams.schemas import (
    TeamCreate,
    TeamListQuery,
    TeamMemberCreate,
    TeamMemberOut,
    TeamMemberUpdate,
    TeamOut,
    TeamUpdate,
)


@bp.post("")
@bp.auth_required()
@bp.arguments(TeamCreate)
@bp.response(201, TeamOut)
def create_team(data):
    """Managers and admins create teams; the creator is the team's first manager."""
    return service.create_team(current_user, **data)


@bp.get("")
@bp.auth_required()
@bp.arguments(TeamListQuery, location="query")
@bp.response(200, page_of(TeamOut))
def list_teams(query):
    """The teams I belong to (admins: `?all=true` for every team), by name."""
    return service.list_teams(current_user, **query)


@bp.get("/<uuid:team_id>")
@bp.auth_required()
@bp.response(200, TeamOut)
def get_team(team_id):
    return service.get_readable_team(current_user, team_id)


@bp.put("/<uuid:team_id>")
@bp.auth_required()
@bp.arguments(TeamUpdate)
@bp.response(200, TeamOut)
def update_team(changes, team_id):
    """The team's managers and admins change it; fields left out keep their value."""
    return service.update_team(current_user, team_id, changes)


@bp.delete("/<uuid:team_id>")
@bp.auth_required()
@bp.response(204)
def delete_team(team_id):
    """The team's managers and admins delete it; its projects stay, without a team."""
    service.delete_team(current_user, team_id)


@bp.get("/<uuid:team_id>/members")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(TeamMemberOut))
def list_members(query, team_id):
    """Managers first, then by name."""
    return service.list_members(current_user, team_id, **query)


@bp.post("/<uuid:team_id>/members")
@bp.auth_required()
@bp.arguments(TeamMemberCreate)
@bp.response(201, TeamMemberOut)
def add_member(data, team_id):
    return service.add_member(current_user, team_id, **data)


@bp.patch("/<uuid:team_id>/members/<uuid:user_id>")
@bp.auth_required()
@bp.arguments(TeamMemberUpdate)
@bp.response(200, TeamMemberOut)
def change_member_role(data, team_id, user_id):
    """The last manager cannot be demoted (409)."""
    return service.change_member_role(current_user, team_id, user_id, data["role"])


@bp.delete("/<uuid:team_id>/members/<uuid:user_id>")
@bp.auth_required()
@bp.response(204)
def remove_member(team_id, user_id):
    """Managers and admins remove members; anyone may leave. The last manager cannot leave (409)."""
    service.remove_member(current_user, team_id, user_id)
