"""Who belongs to a project, in SQL: explicit memberships, plus the members of the project's team.

Kept apart from the service so the task service can ask it without importing the project service (which itself
uses the task service to delete a project's tasks).
"""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.projects.models import Project, ProjectMember
from finstack.teams.models import TeamMember

# A team manager is a project manager, a team member a project member.
TEAM_TO_PROJECT_ROLE = sa.case((TeamMember.role == "manager", "manager"), else_="member")


def memberships(project):
    """`SELECT user_id, role, source` for every member of `project`: explicit ones (source "project"), then the
    team's members who have no explicit membership (source "team")."""
    explicit = sa.select(
        ProjectMember.user_id.label("user_id"),
        ProjectMember.role.label("role"),
        sa.literal("project").label("source"),
    ).where(ProjectMember.project_id == project.id)
    if project.team_id is None:
        return explicit
    derived = sa.select(
        TeamMember.user_id.label("user_id"),
        TEAM_TO_PROJECT_ROLE.label("role"),
        sa.literal("team").label("source"),
    ).where(
        TeamMember.team_id == project.team_id,
        TeamMember.user_id.not_in(sa.select(ProjectMember.user_id).where(ProjectMember.project_id == project.id)),
    )
    return sa.union_all(explicit, derived)


def project_role(project, user_id):
    """The user's role in the project (an explicit membership first, else the team's), or None."""
    rows = memberships(project).subquery()
    return db.session.scalar(sa.select(rows.c.role).where(rows.c.user_id == user_id))


def member_ids(project):
    """The ids of the project's members (explicit, and through its team)."""
    rows = memberships(project).subquery()
    return db.session.scalars(sa.select(rows.c.user_id)).all()


def member_project_ids(user_id):
    """`SELECT id` of the projects the user is a member of, explicitly or through a team."""
    explicit = sa.select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
    through_team = (
        sa.select(Project.id)
        .join(TeamMember, TeamMember.team_id == Project.team_id)
        .where(TeamMember.user_id == user_id)
    )
    return sa.union(explicit, through_team)


def project_member_ids(project_id):
    """`SELECT user_id` of the project's members, explicit or through its team (for SQL over users)."""
    explicit = sa.select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
    through_team = (
        sa.select(TeamMember.user_id)
        .join(Project, Project.team_id == TeamMember.team_id)
        .where(Project.id == project_id)
    )
    return sa.union(explicit, through_team)


def open_project_ids():
    return sa.select(Project.id).where(Project.visibility == "open")


def is_open(project_id):
    """SQL: the project exists and is open."""
    return sa.exists().where(Project.id == project_id, Project.visibility == "open")


def role_in_project(project_id, user_id):
    """`project_role` by id, in one query: the explicit role, else the one the user's team role maps to, or None."""
    explicit = (
        sa.select(ProjectMember.role)
        .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
        .scalar_subquery()
    )
    through_team = (
        sa.select(TEAM_TO_PROJECT_ROLE)
        .select_from(Project)
        .join(TeamMember, TeamMember.team_id == Project.team_id)
        .where(Project.id == project_id, TeamMember.user_id == user_id)
        .scalar_subquery()
    )
    return db.session.scalar(sa.select(sa.func.coalesce(explicit, through_team)))


def project_ids_with_role(user_id, roles):
    """`SELECT id` of the projects where the user's role (explicit first, else the team's) is one of `roles`."""
    explicit = sa.select(ProjectMember.project_id).where(
        ProjectMember.user_id == user_id, ProjectMember.role.in_(roles)
    )
    through_team = (
        sa.select(Project.id)
        .join(TeamMember, TeamMember.team_id == Project.team_id)
        .where(
            TeamMember.user_id == user_id,
            TEAM_TO_PROJECT_ROLE.in_(roles),
            Project.id.not_in(sa.select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)),
        )
    )
    return sa.union(explicit, through_team)


def readable_by_member(project_id, user_id):
    """Is the project open, or is the user one of its members? One query (False when there is no such project)."""
    visible = sa.or_(Project.visibility == "open", Project.id.in_(member_project_ids(user_id)))
    return bool(db.session.scalar(sa.select(visible).where(Project.id == project_id)))


def get_readable_project(actor, project_id):
    """The project, or 404 when it does not exist or is private to people the actor is not one of."""
    project = db.session.get(Project, project_id)
    if project is None or not permissions.can_read_project(actor, project, project_role(project, actor.id)):
        raise ApiError(404, "Project not found")
    return project


def check_task_project(actor, project_id):
    """A task may go into an existing active project the actor may read and add tasks to."""
    if project_id is None:
        return
    project = db.session.get(Project, project_id)
    role = None if project is None else project_role(project, actor.id)
    if project is None or not permissions.can_read_project(actor, project, role):
        raise ApiError(400, "Validation failed", {"project_id": ["No project has this id."]})
    if project.status != "active":
        raise ApiError(400, "Validation failed", {"project_id": ["The project is archived."]})
    permissions.require(
        permissions.can_add_task_to_project(actor, role),
        "Only the project's managers and members (or a manager or admin) may put tasks in it",
    )
