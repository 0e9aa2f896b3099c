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
