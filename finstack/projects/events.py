"""Project events for live clients, emitted only if the transaction commits.

Each goes to the `project:<id>` room (sockets that sent `join_project`, and those of members added while
connected) and to every member's `user:<id>` room (explicit members and the team's); a socket in several of these
rooms receives it once. An open project's other readers hear of it in the room only: they join it when they open it.

    project_created  ProjectOut
    project_updated  ProjectOut (as committed)
    project_deleted  {"id": <project id>}

Each is also published to the webhooks subscribed to it (`finstack.webhooks.publish`), with the same payload.

Membership changes move live sockets at once: a user made a member (explicitly or through the project's team) has
their sockets join the room; one who stops being a member has them leave it.
"""

import sqlalchemy as sa

from finstack import realtime, webhooks
from finstack.core.events import after_commit, emit_after_commit, project_room, user_room
from finstack.extensions import db
from finstack.projects.access import member_ids, project_role
from finstack.projects.models import Project
from finstack.projects.schemas import ProjectOut

PROJECT_CREATED = "project_created"
PROJECT_UPDATED = "project_updated"
PROJECT_DELETED = "project_deleted"


def _rooms(project):
    return [project_room(project.id), *map(user_room, member_ids(project))]


def _dump(project):
    db.session.flush()  # updated_at and defaults as they will be committed
    return ProjectOut().dump(project)


def project_created(project):
    payload = _dump(project)
    emit_after_commit(PROJECT_CREATED, payload, _rooms(project))
    webhooks.publish(PROJECT_CREATED, payload)


def project_updated(project):
    payload = _dump(project)
    emit_after_commit(PROJECT_UPDATED, payload, _rooms(project))
    webhooks.publish(PROJECT_UPDATED, payload)


def project_deleted(project):
    """Call before the project is deleted (its members are read here)."""
    emit_after_commit(PROJECT_DELETED, {"id": str(project.id)}, _rooms(project))
    webhooks.publish(PROJECT_DELETED, {"id": str(project.id)})


def member_added(project_id, user_id):
    room = project_room(project_id)
    after_commit(lambda: realtime.join_user(user_id, [room]))


def member_removed(project, user_id):
    """Call once the membership is gone: a user still a member another way (the team) keeps the room."""
    db.session.flush()
    if project_role(project, user_id) is None:
        room = project_room(project.id)
        after_commit(lambda: realtime.leave_user(user_id, [room]))


def team_member_added(team_id, user_id):
    for project_id in db.session.scalars(sa.select(Project.id).where(Project.team_id == team_id)):
        member_added(project_id, user_id)


def team_member_removed(team_id, user_id):
    """Call once the team membership is gone."""
    for project in db.session.scalars(sa.select(Project).where(Project.team_id == team_id)).all():
        member_removed(project, user_id)
