from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.projects import bp, service
from finstack.projects.schemas import (
    ProgressOut,
    ProjectCreate,
    ProjectDeleteQuery,
    ProjectListQuery,
    ProjectMemberCreate,
    ProjectMemberOut,
    ProjectMemberQuery,
    ProjectMemberUpdate,
    ProjectOut,
    ProjectUpdate,
)
from finstack.tasks import board
from finstack.tasks.schemas import BoardOut, BoardQuery


@bp.post("")
@bp.auth_required()
@bp.arguments(ProjectCreate)
@bp.response(201, ProjectOut)
def create_project(data):
    """Managers and admins create projects; the creator becomes its first project manager."""
    return service.create_project(current_user, **data)


@bp.get("")
@bp.auth_required()
@bp.arguments(ProjectListQuery, location="query")
@bp.response(200, page_of(ProjectOut))
def list_projects(query):
    """Open projects and the private ones I belong to (managers and admins: all), by name."""
    return service.list_projects(current_user, **query)


@bp.get("/<uuid:project_id>")
@bp.auth_required()
@bp.response(200, ProjectOut)
def get_project(project_id):
    """A private project is 404 to whoever is not one of its members (managers and admins excepted)."""
    return service.get_project(current_user, project_id)


@bp.put("/<uuid:project_id>")
@bp.auth_required()
@bp.arguments(ProjectUpdate)
@bp.response(200, ProjectOut)
def update_project(changes, project_id):
    """Project managers, managers and admins change it; fields left out keep their value."""
    return service.update_project(current_user, project_id, changes)


@bp.delete("/<uuid:project_id>")
@bp.auth_required()
@bp.arguments(ProjectDeleteQuery, location="query")
@bp.response(204)
def delete_project(query, project_id):
    """Refused (409) while it holds tasks, unless `cascade=true` deletes them too."""
    service.delete_project(current_user, project_id, query["cascade"])


@bp.get("/<uuid:project_id>/members")
@bp.auth_required()
@bp.arguments(ProjectMemberQuery, location="query")
@bp.response(200, page_of(ProjectMemberOut))
def list_members(query, project_id):
    """Explicit members and the members of the project's team (an explicit membership wins), by name."""
    return service.list_members(current_user, project_id, **query)


@bp.post("/<uuid:project_id>/members")
@bp.auth_required()
@bp.arguments(ProjectMemberCreate)
@bp.response(201, ProjectMemberOut)
def add_member(data, project_id):
    return service.add_member(current_user, project_id, **data)


@bp.patch("/<uuid:project_id>/members/<uuid:user_id>")
@bp.auth_required()
@bp.arguments(ProjectMemberUpdate)
@bp.response(200, ProjectMemberOut)
def change_member_role(data, project_id, user_id):
    return service.change_member_role(current_user, project_id, user_id, data["role"])


@bp.delete("/<uuid:project_id>/members/<uuid:user_id>")
@bp.auth_required()
@bp.response(204)
def remove_member(project_id, user_id):
    """Removes an explicit membership (a team member keeps the team's role)."""
    service.remove_member(current_user, project_id, user_id)


@bp.get("/<uuid:project_id>/progress")
@bp.auth_required()
@bp.response(200, ProgressOut)
def progress(project_id):
    return service.progress(current_user, project_id)


@bp.get("/<uuid:project_id>/board")
@bp.auth_required()
@bp.arguments(BoardQuery, location="query")
@bp.response(200, BoardOut)
def project_board(query, project_id):
    """The kanban board: open, in progress, closed (and cancelled on request), each column top first."""
    return board.project_board(current_user, project_id, **query)
