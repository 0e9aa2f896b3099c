"""Logging in, issuing and revoking tokens."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError

from finstack import realtime
from finstack.auth.models import RevokedToken
from finstack.errors import ApiError
from finstack.extensions import db, jwt
from finstack.users import service as users
from finstack.users.models import User


def _access_lifetime_seconds():
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def issue_access_token(user):
    return {
        "access_token": create_access_token(identity=str(user.id)),
        "token_type": "bearer",
        "expires_in": _access_lifetime_seconds(),
    }


def login(login_name, password):
    user = users.find_by_login(login_name)
    if user is None or not user.check_password(password):
        raise ApiError(401, "Invalid username/email or password")
    if not user.is_active:
        raise ApiError(403, "This account is deactivated")
    return {
        **issue_access_token(user),
        "refresh_token": create_refresh_token(identity=str(user.id)),
        "user": user,
    }


def revoke(payload):
    """Record the token described by the decoded JWT `payload` as revoked (idempotent)."""
    if db.session.get(RevokedToken, payload["jti"]) is not None:
        return
    db.session.add(
        RevokedToken(
            jti=payload["jti"],
            token_type=payload["type"],
            user_id=uuid.UUID(payload["sub"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    )


def logout(user, presented_payload, refresh_token=None):
    revoke(presented_payload)
    if refresh_token:
        try:
            refresh_payload = decode_token(refresh_token)
        except PyJWTError as exc:
            raise ApiError(400, "Validation failed", {"refresh_token": ["Not a valid token."]}) from exc
        if refresh_payload.get("type") != "refresh" or refresh_payload.get("sub") != str(user.id):
            raise ApiError(400, "Validation failed", {"refresh_token": ["Not your refresh token."]})
        revoke(refresh_payload)
    db.session.commit()
    realtime.disconnect_token(presented_payload["jti"])  # the sockets opened with this token, in every process


@jwt.token_in_blocklist_loader
def _is_revoked(header, payload):
    return db.session.get(RevokedToken, payload["jti"]) is not None


@jwt.user_lookup_loader
def _load_user(header, payload):
    """The token's user, only while the account is active: deactivation ends every token at once."""
    try:
        user_id = uuid.UUID(payload["sub"])
    except (KeyError, ValueError, TypeError):
        return None
    return db.session.scalar(sa.select(User).where(User.id == user_id, User.is_active.is_(True)))
