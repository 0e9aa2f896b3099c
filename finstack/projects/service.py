"""Projects: creation, changes, deletion, members (explicit and through a team) and progress."""

import sqlalchemy as sa

from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.projects import events
from finstack.projects.access import get_readable_project, member_project_ids, memberships, project_role
from finstack.projects.models import Project, ProjectMember
from finstack.tasks import counts
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.teams.models import Team
from finstack.users import service as users
from finstack.users.models import User


def get_project(actor, project_id):
    return get_readable_project(actor, project_id)


def get_manageable_project(actor, project_id):
    project = get_readable_project(actor, project_id)
    permissions.require(
        permissions.can_manage_project(actor, project_role(project, actor.id)),
        "Only the project's managers, managers and admins may change it",
    )
    return project


def _check_team(team_id):
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise ApiError(400, "Validation failed", {"team_id": ["No team has this id."]})


def _check_key_free(key, exclude_id=None):
    statement = sa.select(Project.id).where(Project.key == key)
    if exclude_id is not None:
        statement = statement.where(Project.id != exclude_id)
    if db.session.scalar(statement) is not None:
        raise ApiError(409, "This project key is taken", {"key": [f"{key} is already used by another project."]})


def create_project(actor, **fields):
    permissions.require(permissions.can_create_project(actor), "Only managers and admins may create projects")
    _check_team(fields.get("team_id"))
    _check_key_free(fields["key"])
    project = Project(created_by=actor.id, **fields)
    db.session.add(project)
    db.session.flush()
    db.session.add(ProjectMember(project_id=project.id, user_id=actor.id, role="manager"))
    audit.record(actor, "project.create", "project", project.id, fields)
    events.member_added(project.id, actor.id)
    events.project_created(project)
    db.session.commit()
    return project


def list_projects(actor, *, page, per_page, cursor=None, status=None, visibility=None, team_id=None, search=None):
    """Open projects and the private ones the actor belongs to (managers and admins: all), by name."""
    conditions = [permissions.visible_projects_clause(actor, Project, member_project_ids(actor.id))]
    if status:
        conditions.append(Project.status == status)
    if visibility:
        conditions.append(Project.visibility == visibility)
    if team_id:
        conditions.append(Project.team_id == team_id)
    if search:
        conditions.append(sa.or_(contains_literal(Project.name, search), contains_literal(Project.key, search)))
    statement = sa.select(Project).where(*conditions).order_by(Project.name, Project.id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


def update_project(actor, project_id, changes):
    project = get_manageable_project(actor, project_id)
    changed = audit.diff(project, changes)
    if not changed:
        return project
    if "key" in changed:
        _check_key_free(changes["key"], exclude_id=project.id)
    if "team_id" in changed:
        _check_team(changes["team_id"])
    start = changes.get("start_date", project.start_date)
    due = changes.get("due_date", project.due_date)
    if start is not None and due is not None and due < start:
        raise ApiError(400, "Validation failed", {"due_date": ["due_date must not be before start_date."]})
    for field in changed:
        setattr(project, field, changes[field])
    audit.record(actor, "project.update", "project", project.id, changed)
    events.project_updated(project)
    db.session.commit()
    return project


def delete_project(actor, project_id, cascade=False):
    """Refused while the project holds tasks outside the trash, unless `cascade`: then they go to the trash as
    `DELETE /tasks/<id>` sends them. Its tasks in the trash stay there, in no project."""
    project = get_manageable_project(actor, project_id)
    task_count = db.session.scalar(sa.select(sa.func.count()).where(Task.project_id == project.id, Task.live()))
    if task_count and not cascade:
        raise ApiError(
            409, "The project still holds tasks: move or delete them, or pass cascade=true", {"tasks": task_count}
        )
    if task_count:
        tasks.delete_project_tasks(actor, project.id)
    tasks.release_trashed_from_project(project.id)
    audit.record(
        actor,
        "project.delete",
        "project",
        project.id,
        {"key": project.key, "name": project.name, "tasks_deleted": task_count},
    )
    events.project_deleted(project)
    db.session.delete(project)
    db.session.commit()


def list_members(actor, project_id, *, page, per_page, cursor=None, search=None):
    """Explicit members and the team's, by name; one page of users, then their roles for that page."""
    project = get_readable_project(actor, project_id)
    rows = memberships(project).subquery()
    conditions = []
    if search:
        conditions.append(
            sa.or_(*(contains_literal(column, search) for column in (User.full_name, User.username, User.email)))
        )
    statement = (
        sa.select(User).join(rows, rows.c.user_id == User.id).where(*conditions).order_by(User.full_name, User.id)
    )
    result = paginate(statement, page=page, per_page=per_page, cursor=cursor)
    page_ids = [user.id for user in result["items"]]
    roles = {
        user_id: (role, source)
        for user_id, role, source in db.session.execute(
            sa.select(rows.c.user_id, rows.c.role, rows.c.source).where(rows.c.user_id.in_(page_ids))
        )
    }
    result["items"] = [
        {"user_id": user.id, "user": user, "role": roles[user.id][0], "source": roles[user.id][1]}
        for user in result["items"]
    ]
    return result


def _explicit_membership(project, user_id):
    membership = db.session.get(ProjectMember, (project.id, user_id))
    if membership is not None:
        return membership
    if project_role(project, user_id) is not None:
        raise ApiError(
            409, "This user's membership comes from the project's team: change it in the team, or add an explicit one"
        )
    raise ApiError(404, "This user is not a member of the project")


def _member_out(membership, source="project"):
    return {"user_id": membership.user_id, "user": membership.user, "role": membership.role, "source": source}


def add_member(actor, project_id, *, user_id, role):
    """An explicit membership; for a member of the project's team it overrides the team's role."""
    project = get_manageable_project(actor, project_id)
    if users.find_active(user_id) is None:
        raise ApiError(400, "Validation failed", {"user_id": ["No active user has this id."]})
    if db.session.get(ProjectMember, (project.id, user_id)) is not None:
        raise ApiError(409, "This user is already a member of the project", {"user_id": [str(user_id)]})
    membership = ProjectMember(project_id=project.id, user_id=user_id, role=role)
    db.session.add(membership)
    audit.record(actor, "project.member_add", "project", project.id, {"user_id": user_id, "role": role})
    events.member_added(project.id, user_id)
    db.session.commit()
    return _member_out(membership)


def change_member_role(actor, project_id, user_id, role):
    project = get_manageable_project(actor, project_id)
    membership = _explicit_membership(project, user_id)
    if role != membership.role:
        audit.record(
            actor,
            "project.member_update",
            "project",
            project.id,
            {"user_id": user_id, "role": {"from": membership.role, "to": role}},
        )
        membership.role = role
        db.session.commit()
    return _member_out(membership)


def remove_member(actor, project_id, user_id):
    """Removes an explicit membership; a team member then falls back to the role the team gives."""
    project = get_manageable_project(actor, project_id)
    membership = _explicit_membership(project, user_id)
    audit.record(actor, "project.member_remove", "project", project.id, {"user_id": user_id, "role": membership.role})
    db.session.delete(membership)
    events.member_removed(project, user_id)
    db.session.commit()


def project_progress(project_id):
    """A project's progress: its live tasks by status from the maintained counts (finstack.tasks.counts), whoever
    reads it (a reader of a project reads all its tasks), overdue included."""
    statuses, overdue = counts.with_overdue("project", counts.uuid_key(project_id), Task.project_id == project_id)
    total, closed, cancelled = sum(statuses.values()), statuses["closed"], statuses["cancelled"]
    return {
        "total_tasks": total,
        "open_tasks": statuses["open"],
        "in_progress_tasks": statuses["in_progress"],
        "completed_tasks": closed,
        "cancelled_tasks": cancelled,
        "overdue_tasks": overdue,
        "progress_percentage": round(100 * closed / (total - cancelled), 1) if total - cancelled else 0.0,
    }


def progress(actor, project_id):
    return project_progress(get_readable_project(actor, project_id).id)
