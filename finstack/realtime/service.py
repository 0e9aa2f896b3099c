"""Who may hold a socket: the token checks at connect, and the periodic re-check of live sockets."""

import uuid
from collections import defaultdict

import sqlalchemy as sa
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError

from finstack.auth import service as auth
from finstack.auth.models import TokenFamily
from finstack.core import permissions
from finstack.core.schemas import has_unstorable_text
from finstack.extensions import db
from finstack.tasks.models import Task
from finstack.tickets.models import DepartmentAgent
from finstack.users.models import User

CHUNK = 500


class SocketAuthError(Exception):
    """Why a connection is refused: `code` is stable for clients, `message` is for people."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def authenticate(token):
    """The active user and the claims of the access token `token`, or SocketAuthError."""
    if not token or not isinstance(token, str):
        raise SocketAuthError("token_missing", "Send the access token as auth {token} or the `token` query parameter")
    if has_unstorable_text(token):  # no token holds such text, and the decoder would choke on it
        raise SocketAuthError("token_invalid", "Invalid token")
    token = token.removeprefix("Bearer ").strip()
    try:
        claims = decode_token(token)  # signature and expiry
    except ExpiredSignatureError as exc:
        raise SocketAuthError("token_expired", "Token has expired") from exc
    except (PyJWTError, JWTExtendedException) as exc:
        raise SocketAuthError("token_invalid", "Invalid token") from exc
    if claims.get("type") != "access":
        raise SocketAuthError("token_invalid", "Use an access token, not a refresh token")
    user, problem = auth.session_user(claims)  # the same check as every REST request
    if problem == auth.REVOKED:
        raise SocketAuthError("token_revoked", "Token has been revoked")
    if problem is not None:
        raise SocketAuthError("user_inactive", "Token no longer valid: the account is missing or deactivated")
    return user, claims


def active_user(user_id):
    """The socket's user while the account is active, else None."""
    return db.session.scalar(sa.select(User).where(User.id == uuid.UUID(str(user_id)), User.is_active.is_(True)))


def ended_sessions(sessions):
    """Of the `(user_id, family, version)` triples (ids as strings), those whose account is missing or inactive,
    whose credentials changed since (version) or whose sign-in was ended (family). Two indexed lookups per CHUNK."""
    sessions = set(sessions)
    user_ids = sorted({uuid.UUID(user_id) for user_id, _, _ in sessions})
    family_ids = sorted({uuid.UUID(family) for _, family, _ in sessions})
    versions = {}
    for start in range(0, len(user_ids), CHUNK):
        chunk = user_ids[start : start + CHUNK]
        rows = db.session.execute(
            sa.select(User.id, User.token_version).where(User.id.in_(chunk), User.is_active.is_(True))
        )
        versions.update({str(user_id): version for user_id, version in rows})
    live = set()
    for start in range(0, len(family_ids), CHUNK):
        chunk = family_ids[start : start + CHUNK]
        query = sa.select(TokenFamily.id).where(TokenFamily.id.in_(chunk), TokenFamily.revoked_at.is_(None))
        live.update(str(family_id) for family_id in db.session.scalars(query))
    return {
        (user_id, family, version)
        for user_id, family, version in sessions
        if versions.get(user_id) != version or family not in live
    }


def unreadable_tasks(task_ids_by_user):
    """Of `{user_id: task ids}` (strings: the `task:<id>` rooms a user's sockets are in), `{user_id: task ids}` of
    the tasks the user may no longer read (`permissions.readable_tasks_clause`), or that are gone. One query per
    user; users who are gone or inactive are left to `ended_sessions`."""
    users = db.session.scalars(sa.select(User).where(User.id.in_([uuid.UUID(key) for key in task_ids_by_user])))
    unreadable = {}
    for user in users:
        asked = {uuid.UUID(task_id) for task_id in task_ids_by_user[str(user.id)]}
        readable = set(
            db.session.scalars(
                sa.select(Task.id).where(Task.id.in_(asked), permissions.readable_tasks_clause(user, Task))
            )
        )
        if asked - readable:
            unreadable[str(user.id)] = {str(task_id) for task_id in asked - readable}
    return unreadable


def departments_left(department_ids_by_user):
    """Of `{user_id: department ids}` (strings: the `department:<id>` rooms a user's sockets are in), `{user_id:
    department ids}` of the departments the user is no longer an agent or lead of (or that are gone). One query per
    CHUNK of users."""
    user_ids = sorted(uuid.UUID(key) for key in department_ids_by_user)
    current = defaultdict(set)
    for start in range(0, len(user_ids), CHUNK):
        rows = db.session.execute(
            sa.select(DepartmentAgent.user_id, DepartmentAgent.department_id).where(
                DepartmentAgent.user_id.in_(user_ids[start : start + CHUNK])
            )
        )
        for user_id, department_id in rows:
            current[str(user_id)].add(str(department_id))
    left = {}
    for user_id, department_ids in department_ids_by_user.items():
        gone = set(department_ids) - current[user_id]
        if gone:
            left[user_id] = gone
    return left
