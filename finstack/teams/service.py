"""Teams: creation, changes, members and the last-manager rule."""

import sqlalchemy as sa

from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.locks import lock_rows
from finstack.core.pagination import paginate
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.projects import events as project_events
from finstack.teams.models import Team, TeamMember
from finstack.users import service as users
from finstack.users.models import User


def team_role(team_id, user_id):
    """The user's role in the team, or None."""
    return db.session.scalar(
        sa.select(TeamMember.role).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )


def get_team(team_id):
    team = db.session.get(Team, team_id)
    if team is None:
        raise ApiError(404, "Team not found")
    return team


def get_readable_team(actor, team_id):
    team = get_team(team_id)
    permissions.require(
        permissions.can_read_team(actor, team_role(team.id, actor.id)), "Only the team's members or an admin may see it"
    )
    return team


def get_manageable_team(actor, team_id):
    team = get_team(team_id)
    permissions.require(
        permissions.can_manage_team(actor, team_role(team.id, actor.id)),
        "Only the team's managers or an admin may change it",
    )
    return team


def create_team(actor, *, name, description=None):
    permissions.require(permissions.can_create_team(actor), "Only managers and admins may create teams")
    team = Team(name=name.strip(), description=description, created_by=actor.id)
    db.session.add(team)
    db.session.flush()
    db.session.add(TeamMember(team_id=team.id, user_id=actor.id, role="manager"))
    audit.record(actor, "team.create", "team", team.id, {"name": team.name, "description": description})
    db.session.commit()
    return team


def list_teams(actor, *, page, per_page, cursor=None, all_teams=False):
    """The teams the actor belongs to; admins may ask for every team."""
    if all_teams:
        permissions.require(actor.role == "admin", "Only admins may list every team")
    statement = sa.select(Team)
    if not all_teams:
        statement = statement.where(Team.id.in_(sa.select(TeamMember.team_id).where(TeamMember.user_id == actor.id)))
    return paginate(statement.order_by(Team.name, Team.id), page=page, per_page=per_page, cursor=cursor)


def update_team(actor, team_id, changes):
    team = get_manageable_team(actor, team_id)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    changed = audit.diff(team, changes)
    if changed:
        for field in changed:
            setattr(team, field, changes[field])
        audit.record(actor, "team.update", "team", team.id, changed)
        db.session.commit()
    return team


def delete_team(actor, team_id):
    """Its memberships go with it; its projects stay, without a team (and without the members it gave them)."""
    team = get_manageable_team(actor, team_id)
    audit.record(actor, "team.delete", "team", team.id, {"name": team.name})
    db.session.delete(team)
    db.session.commit()


def list_members(actor, team_id, *, page, per_page, cursor=None):
    team = get_readable_team(actor, team_id)
    statement = (
        sa.select(TeamMember)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team.id)
        .order_by(sa.case((TeamMember.role == "manager", 0), else_=1), User.full_name, User.id)
    )
    return paginate(
        statement,
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=sa.select(TeamMember.user_id).where(TeamMember.team_id == team.id),
    )


def _get_membership(team_id, user_id):
    membership = db.session.get(TeamMember, (team_id, user_id))
    if membership is None:
        raise ApiError(404, "This user is not a member of the team")
    return membership


def add_member(actor, team_id, *, user_id, role):
    team = get_manageable_team(actor, team_id)
    if users.find_active(user_id) is None:
        raise ApiError(400, "Validation failed", {"user_id": ["No active user has this id."]})
    if db.session.get(TeamMember, (team.id, user_id)) is not None:
        raise ApiError(409, "This user is already a member of the team", {"user_id": [str(user_id)]})
    membership = TeamMember(team_id=team.id, user_id=user_id, role=role)
    db.session.add(membership)
    audit.record(actor, "team.member_add", "team", team.id, {"user_id": user_id, "role": role})
    project_events.team_member_added(team.id, user_id)
    db.session.commit()
    return membership


def _refuse_losing_last_manager(membership):
    """A team keeps at least one manager: its last one can neither leave nor be demoted.

    The team's row is locked first, so two managers demoting each other at once cannot both pass."""
    if membership.role != "manager":
        return
    lock_rows(Team, [membership.team_id])
    managers = db.session.scalar(
        sa.select(sa.func.count()).where(TeamMember.team_id == membership.team_id, TeamMember.role == "manager")
    )
    if managers <= 1:
        raise ApiError(409, "A team needs a manager: promote someone else first")


def change_member_role(actor, team_id, user_id, role):
    team = get_manageable_team(actor, team_id)
    membership = _get_membership(team.id, user_id)
    if role != membership.role:
        _refuse_losing_last_manager(membership)
        audit.record(
            actor,
            "team.member_update",
            "team",
            team.id,
            {"user_id": user_id, "role": {"from": membership.role, "to": role}},
        )
        membership.role = role
        db.session.commit()
    return membership


def remove_member(actor, team_id, user_id):
    """Managers and admins remove anyone; every member may leave (remove themselves)."""
    team = get_team(team_id)
    if user_id != actor.id:
        team = get_manageable_team(actor, team_id)
    membership = _get_membership(team.id, user_id)
    _refuse_losing_last_manager(membership)
    audit.record(actor, "team.member_remove", "team", team.id, {"user_id": user_id, "role": membership.role})
    db.session.delete(membership)
    project_events.team_member_removed(team.id, user_id)
    db.session.commit()
