"""Reading the per-user event log (finstack.core.event_log): pages after a `seq`, with the access re-check, and the
retention pruning.

Events are recorded with the access of the moment they happened; a page drops, at read time, those of
conversations the user has left and of projects and tasks they may no longer read (one query per kind of scope on
the page). `last_seq` is the last seq the page covered, dropped events included, so a client moves past them.
"""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from finstack.chat.models import MEMBER_KINDS, Conversation, ConversationMember
from finstack.core import permissions
from finstack.core.event_log import UserEvent, UserEventCounter
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs import periodic
from finstack.projects.access import member_project_ids
from finstack.projects.models import Project
from finstack.tasks.models import Task
from finstack.users.models import User

REPLAY_PAGE = 500


def user_for_replay(user_id):
    return db.session.get(User, uuid.UUID(str(user_id)))


def _cutoff(now=None):
    return (now or utcnow()) - timedelta(days=current_app.config["EVENT_RETENTION_DAYS"])


def events_after(user, since=0, limit=100):
    """`{events, last_seq, has_more, resync}`: the user's readable events with seq > `since`, at most `limit`, in
    order. When events after `since` are past retention (pruned or due to be) the page is empty with `resync` true
    and `last_seq` the user's latest seq: reload your state, then continue from there."""
    cutoff = _cutoff()
    oldest = db.session.scalar(
        sa.select(sa.func.min(UserEvent.seq)).where(UserEvent.user_id == user.id, UserEvent.created_at >= cutoff)
    )
    latest = db.session.scalar(sa.select(UserEventCounter.last_seq).where(UserEventCounter.user_id == user.id)) or 0
    if oldest is None:
        oldest = latest + 1
    if since + 1 < oldest:
        return {"events": [], "last_seq": latest, "has_more": False, "resync": True}
    rows = db.session.scalars(
        sa.select(UserEvent)
        .where(UserEvent.user_id == user.id, UserEvent.seq > since)
        .order_by(UserEvent.seq)
        .limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    hidden = _unreadable_scopes(user, {row.scope for row in rows if row.scope})
    return {
        "events": [row for row in rows if row.scope not in hidden],
        "last_seq": rows[-1].seq if rows else since,
        "has_more": has_more,
        "resync": False,
    }


def _ids(scopes, prefix):
    ids = set()
    for scope in scopes:
        if scope.startswith(prefix):
            try:
                ids.add(uuid.UUID(scope.removeprefix(prefix)))
            except ValueError:
                continue
    return ids


def _unreadable_scopes(user, scopes):
    """Of the `conversation:`, `project:` and `task:` scopes, those `user` may not read now."""
    hidden = set()
    conversations = _ids(scopes, "conversation:")
    if conversations:
        member_kinds = set(
            db.session.scalars(
                sa.select(Conversation.id).where(
                    Conversation.id.in_(conversations), Conversation.kind.in_(MEMBER_KINDS)
                )
            )
        )
        still_member = set(
            db.session.scalars(
                sa.select(ConversationMember.conversation_id).where(
                    ConversationMember.conversation_id.in_(member_kinds), ConversationMember.user_id == user.id
                )
            )
        )
        hidden.update(f"conversation:{cid}" for cid in member_kinds - still_member)
    projects = _ids(scopes, "project:")
    if projects:
        readable = set(
            db.session.scalars(
                sa.select(Project.id).where(
                    Project.id.in_(projects),
                    permissions.visible_projects_clause(user, Project, member_project_ids(user.id)),
                )
            )
        )
        hidden.update(f"project:{pid}" for pid in projects - readable)
    tasks = _ids(scopes, "task:")
    if tasks:
        readable = set(
            db.session.scalars(
                sa.select(Task.id).where(Task.id.in_(tasks), permissions.readable_tasks_clause(user, Task))
            )
        )
        hidden.update(f"task:{tid}" for tid in tasks - readable)
    return hidden


def prune(now=None):
    """Delete the events older than EVENT_RETENTION_DAYS; commits. A client behind them gets `resync`."""
    try:
        deleted = db.session.execute(
            sa.delete(UserEvent).where(UserEvent.created_at < _cutoff(now)).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return deleted


periodic("events.prune", "SCHEDULE_PRUNE_EVENTS_SECONDS")(prune)
