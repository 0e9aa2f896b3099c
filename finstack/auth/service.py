"""Signing in, token families and refresh rotation, revocation, and the one session check every request makes.

Every token carries `ver` (the user's `token_version` when it was issued) and `fam` (its sign-in, a TokenFamily).
A token is good while the account is active, `ver` equals the account's version and the family is not revoked:
one indexed query per request (`session_user`), shared by REST, socket connects and the socket re-check.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy.orm import Session, defer
from werkzeug.security import check_password_hash, generate_password_hash

from finstack import realtime
from finstack.audit import service as audit
from finstack.auth.models import TokenFamily
from finstack.core.events import after_commit
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db, jwt
from finstack.users import service as users
from finstack.users.models import User

INACTIVE = "user_inactive"
REVOKED = "token_revoked"


@dataclass(frozen=True)
class SessionIdentity:
    """What the service mints tokens for: the user, the account's token version, the sign-in (family)."""

    user_id: uuid.UUID
    version: int
    family_id: uuid.UUID


@jwt.user_identity_loader
def _identity(identity):
    return str(identity.user_id) if isinstance(identity, SessionIdentity) else str(identity)


@jwt.additional_claims_loader
def _claims(identity):
    """`ver` and `fam` for every token. A token minted outside a sign-in (`create_access_token(identity=user_id)`
    in a script or a test) opens a family of its own, committed at once, so logout and reuse rules hold for it too."""
    if isinstance(identity, SessionIdentity):
        return {"ver": identity.version, "fam": str(identity.family_id)}
    family_id = uuid.uuid4()
    try:
        user_id = uuid.UUID(str(identity))
    except ValueError:
        return {"ver": 0, "fam": str(family_id)}
    with Session(db.engine) as session, session.begin():
        version = session.scalar(sa.select(User.token_version).where(User.id == user_id))
        if version is not None:
            session.add(TokenFamily(id=family_id, user_id=user_id, current_jti=_new_jti(), rotated_at=utcnow()))
    return {"ver": version or 0, "fam": str(family_id)}


def _new_jti():
    return uuid.uuid4().hex


def _access_lifetime_seconds():
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def _identity_for(user, family):
    return SessionIdentity(user.id, user.token_version, family.id)


def _refresh_token(user, family):
    """The family's current refresh token, encoded identically every time (same jti, iat and exp): a concurrent
    refresh within the grace window gets the very token the first one got."""
    issued = int(family.rotated_at.timestamp())
    expires = issued + int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
    return create_refresh_token(
        identity=_identity_for(user, family),
        additional_claims={"jti": family.current_jti, "iat": issued, "nbf": issued, "exp": expires},
    )


def token_pair(user, family):
    return {
        "access_token": create_access_token(identity=_identity_for(user, family)),
        "refresh_token": _refresh_token(user, family),
        "token_type": "bearer",
        "expires_in": _access_lifetime_seconds(),
    }


def start_session(user):
    """Open a sign-in (token family) for `user`, in the caller's transaction; returns the family."""
    family = TokenFamily(user_id=user.id, current_jti=_new_jti(), rotated_at=utcnow())
    db.session.add(family)
    db.session.flush()
    return family


def _dummy_hash():
    """A hash made with the configured method, checked when no account matches: unknown names cost a hash check
    like known ones, so timing does not tell them apart."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    cache = current_app.extensions.setdefault("finstack.dummy_password_hash", {})
    if method not in cache:
        cache[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return cache[method]


def login(login_name, password):
    user = users.find_by_login(login_name)
    password_ok = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    if user is None or not password_ok:
        audit.record_now(None, "auth.login_failed", "user", user.id if user else None, {"login": login_name})
        raise ApiError(401, "Invalid username/email or password", code="invalid_credentials")
    if not user.is_active:
        audit.record_now(None, "auth.login_failed", "user", user.id, {"login": login_name, "reason": "inactive"})
        raise ApiError(403, "This account is deactivated", code="account_inactive")
    family = start_session(user)
    audit.record(user, "auth.login", "user", user.id, {"family": family.id})
    db.session.commit()
    return {**token_pair(user, family), "user": user}


def refresh(user, claims):
    """Rotate the presented refresh token: its successor, or (a retired token presented again) the family's end.

    The conditional UPDATE lets exactly one of two concurrent refreshes rotate; the other waits for its commit
    (row lock on PostgreSQL, the write lock on SQLite), finds the token just retired and, within the grace window,
    answers with the same successor.
    """
    family_id = uuid.UUID(claims["fam"])
    presented = claims["jti"]
    now = utcnow()
    rotated = db.session.execute(
        sa.update(TokenFamily)
        .where(
            TokenFamily.id == family_id,
            TokenFamily.current_jti == presented,
            TokenFamily.revoked_at.is_(None),
        )
        .values(current_jti=_new_jti(), previous_jti=presented, rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:
        family = db.session.get(TokenFamily, family_id, populate_existing=True)
        grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
        concurrent = (
            family is not None
            and family.revoked_at is None
            and family.previous_jti == presented
            and now - family.rotated_at <= grace
        )
        if not concurrent:
            _refuse_reuse(user, family_id)
    db.session.commit()
    return token_pair(user, db.session.get(TokenFamily, family_id, populate_existing=True))


def _refuse_reuse(user, family_id):
    revoke_families([family_id])
    audit.record(user, "auth.refresh_reused", "user", user.id, {"family": family_id})
    db.session.commit()
    raise ApiError(
        401,
        "This refresh token was already used: the sign-in it belongs to has ended everywhere; sign in again",
        code=REVOKED,
    )


def revoke_families(family_ids):
    """Revoke the families (their refresh and access tokens) in the caller's transaction; sockets opened with
    their tokens are dropped after commit."""
    family_ids = sorted(set(family_ids))
    if not family_ids:
        return
    db.session.execute(
        sa.update(TokenFamily)
        .where(TokenFamily.id.in_(family_ids), TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    for family_id in family_ids:
        after_commit(lambda family_id=family_id: realtime.disconnect_family(family_id))


def change_password(user, current_password, new_password):
    """The user's own password change: every session ends, and the one that asked continues in a new sign-in."""
    users.change_password(user, current_password, new_password)
    family = start_session(user)
    db.session.commit()
    return {**token_pair(user, family), "user": user}


def _family_of(claims):
    try:
        return uuid.UUID(claims["fam"])
    except (KeyError, ValueError, TypeError):
        return None


def logout(user, presented_claims, refresh_token=None):
    """End the sign-in of the presented access token, and that of `refresh_token` if given."""
    families = {_family_of(presented_claims)}
    if refresh_token:
        try:
            refresh_claims = decode_token(refresh_token, allow_expired=True)
        except (PyJWTError, JWTExtendedException) as exc:
            raise ApiError(400, "Validation failed", {"refresh_token": ["Not a valid token."]}) from exc
        if refresh_claims.get("type") != "refresh" or refresh_claims.get("sub") != str(user.id):
            raise ApiError(400, "Validation failed", {"refresh_token": ["Not your refresh token."]})
        families.add(_family_of(refresh_claims))
    families.discard(None)
    revoke_families(families)
    audit.record(user, "auth.logout", "user", user.id, {"families": sorted(str(family) for family in families)})
    db.session.commit()


def _session_statement(*user_columns):
    """The request's session check, built once (its cache key too) with the token's user and family as parameters:
    the user's `user_columns` and whether the family is live (`family_ok`)."""
    families = TokenFamily.__table__
    return sa.select(
        *user_columns,
        sa.exists()
        .where(
            families.c.id == sa.bindparam("family_id", type_=sa.Uuid),
            families.c.user_id == User.__table__.c.id,
            families.c.revoked_at.is_(None),
        )
        .label("family_ok"),
    ).where(User.__table__.c.id == sa.bindparam("user_id", type_=sa.Uuid))


# The hash is loaded when a password is checked, never for the account of every request: the ORM user leaves it
# deferred, the row (see `session_user`) leaves it out.
_SESSION_USER = _session_statement(User).options(defer(User.password_hash))
_SESSION_ROW = _session_statement(*(column for column in User.__table__.c if column.key != "password_hash"))


def session_user(claims, row=False):
    """`(user, problem)` for decoded token `claims`, in one indexed query: problem is None (good), INACTIVE (no such
    active account) or REVOKED (credentials changed since, or the sign-in was ended).

    `row=True`: the user is a Core row of the account's columns (and `family_ok`), not an ORM object, for a request
    that only reads them (no identity map, no instance state)."""
    try:
        user_id = uuid.UUID(claims["sub"])
    except (KeyError, ValueError, TypeError):
        return None, INACTIVE
    family_id = _family_of(claims)
    statement = _SESSION_ROW if row else _SESSION_USER
    found = db.session.execute(statement, {"user_id": user_id, "family_id": family_id}).first()
    user = None if found is None else found if row else found.User
    if user is None or not user.is_active:
        return None, INACTIVE
    if family_id is None or user.token_version != claims.get("ver") or not found.family_ok:
        return user, REVOKED
    return user, None


def _request_session(payload):
    """`session_user` once per request: the blocklist check and the user lookup get the same decoded `payload`
    object and share one answer; the user is a row where the view asked for one (`ApiBlueprint.auth_required`)."""
    cached = g.get("finstack_session")
    if cached is None or cached[0] is not payload:
        cached = (payload, session_user(payload, row=g.get("finstack_user_row", False)))
        g.finstack_session = cached
    return cached[1]


@jwt.token_in_blocklist_loader
def _is_revoked(header, payload):
    return _request_session(payload)[1] == REVOKED


@jwt.user_lookup_loader
def _load_user(header, payload):
    """The token's user while the account is active and the token is current."""
    user, problem = _request_session(payload)
    return user if problem is None else None
