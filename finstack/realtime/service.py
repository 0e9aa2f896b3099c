"""Who may hold a socket: the token checks at connect, and the periodic re-check of live sockets."""

import uuid

import sqlalchemy as sa
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError

from finstack.auth.models import RevokedToken
from finstack.core.schemas import has_unstorable_text
from finstack.extensions import db
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
    if db.session.get(RevokedToken, claims["jti"]) is not None:
        raise SocketAuthError("token_revoked", "Token has been revoked")
    try:
        user_id = uuid.UUID(claims["sub"])
    except (KeyError, ValueError, TypeError) as exc:
        raise SocketAuthError("token_invalid", "Invalid token") from exc
    user = db.session.scalar(sa.select(User).where(User.id == user_id, User.is_active.is_(True)))
    if user is None:
        raise SocketAuthError("user_inactive", "Token no longer valid: the account is missing or deactivated")
    return user, claims


def active_user(user_id):
    """The socket's user while the account is active, else None."""
    return db.session.scalar(sa.select(User).where(User.id == uuid.UUID(str(user_id)), User.is_active.is_(True)))


def ended_sessions(sessions):
    """Of the `(user_id, jti)` pairs (user ids as strings), those whose token was revoked or whose account is
    missing or inactive. Two indexed lookups per CHUNK sockets."""
    sessions = set(sessions)
    user_ids = sorted({uuid.UUID(user_id) for user_id, _ in sessions})
    jtis = sorted({jti for _, jti in sessions})
    active = set()
    for start in range(0, len(user_ids), CHUNK):
        chunk = user_ids[start : start + CHUNK]
        active.update(db.session.scalars(sa.select(User.id).where(User.id.in_(chunk), User.is_active.is_(True))))
    revoked = set()
    for start in range(0, len(jtis), CHUNK):
        chunk = jtis[start : start + CHUNK]
        revoked.update(db.session.scalars(sa.select(RevokedToken.jti).where(RevokedToken.jti.in_(chunk))))
    active_ids = {str(user_id) for user_id in active}
    return {(user_id, jti) for user_id, jti in sessions if user_id not in active_ids or jti in revoked}
