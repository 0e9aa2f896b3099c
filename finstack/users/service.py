"""User accounts: creation, profile, passwords, activation, roles, the directory. The API and the CLI both call
these functions, so both keep the same rules (the last admin) and leave the same audit trail."""

import sqlalchemy as sa
from flask import current_app

from finstack import realtime
from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.events import after_commit
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.users.models import User


def get_user(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, "User not found")
    return user


def find_by_login(login):
    """The user whose username or e-mail address, in any case, is `login`."""
    login = login.strip().lower()
    return db.session.scalar(sa.select(User).where(sa.or_(sa.func.lower(User.username) == login, User.email == login)))


def _ensure_unique(username=None, email=None, exclude_id=None):
    """Usernames and e-mail addresses are unique regardless of case (e-mail addresses are stored lower-cased)."""
    conflicts = {}
    columns = (("username", sa.func.lower(User.username), username), ("email", User.email, email))
    for field, column, value in columns:
        if value is None:
            continue
        query = sa.select(User.id).where(column == value.lower())
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if db.session.scalar(query) is not None:
            conflicts[field] = [f"This {field} is already taken."]
    if conflicts:
        raise ApiError(409, "User already exists", conflicts)


def create_user(*, username, email, password, full_name, phone=None, role="member", department=None):
    _ensure_unique(username=username, email=email)
    user = User(
        username=username,
        email=email,
        full_name=full_name,
        phone=phone,
        role=role,
        department=department,
        is_active=True,
    )
    user.set_password(password, current_app.config["PASSWORD_HASH_METHOD"])
    db.session.add(user)
    db.session.commit()
    return user


def update_profile(user, **changes):
    _ensure_unique(email=changes.get("email"), exclude_id=user.id)
    for field, value in changes.items():
        setattr(user, field, value)
    db.session.commit()
    return user


def end_sessions(user, actor, reason):
    """Every token `user` holds stops working (one version bump, see finstack.auth.service), audited; their sockets
    drop after commit, in every process (the periodic re-check is the safety net). In the caller's transaction."""
    user.token_version = User.token_version + 1
    audit.record(actor, "auth.tokens_revoked", "user", user.id, {"reason": reason})
    after_commit(lambda user_id=user.id: realtime.disconnect_user(user_id))


def _store_password(user, new_password):
    user.set_password(new_password, current_app.config["PASSWORD_HASH_METHOD"])


def change_password(user, current_password, new_password):
    """The user's own change: every session ends, in the caller's transaction (finstack.auth.service opens the
    new one for the session that asked)."""
    if not user.check_password(current_password):
        raise ApiError(400, "Validation failed", {"current_password": ["Current password is incorrect."]})
    _store_password(user, new_password)
    audit.record(user, "user.password_changed", "user", user.id)
    end_sessions(user, user, "password_changed")


def set_active(user, active, actor=None):
    """(De)activate; either change ends the user's tokens issued before (reactivation revives none). Asking for the
    state the account is already in changes nothing."""
    if user.is_active == active:
        return user
    user.is_active = active
    audit.record(actor, "user.activate" if active else "user.deactivate", "user", user.id)
    end_sessions(user, actor, "activated" if active else "deactivated")
    db.session.commit()
    return user


def list_users(
    actor,
    *,
    page,
    per_page,
    cursor=None,
    search=None,
    role=None,
    department=None,
    is_active=None,
    include_inactive=False,
):
    """The directory. Members see active users only; managers and admins may ask for inactive ones too
    (`include_inactive`, or `is_active=false`)."""
    wants_inactive = include_inactive or is_active is False
    if wants_inactive:
        permissions.require(permissions.sees_all_tasks(actor), "Only managers and admins may list inactive users")
    query = sa.select(User)
    if is_active is not None:
        query = query.where(User.is_active.is_(is_active))
    elif not include_inactive:
        query = query.where(User.is_active.is_(True))
    if department:
        query = query.where(User.department == department)
    if search:
        query = query.where(
            sa.or_(
                contains_literal(User.full_name, search),
                contains_literal(User.username, search),
                contains_literal(User.email, search),
            )
        )
    if role:
        query = query.where(User.role == role)
    return paginate(query.order_by(User.full_name, User.id), page=page, per_page=per_page, cursor=cursor)


def list_all_users():
    return db.session.scalars(sa.select(User).order_by(User.username)).all()


def find_active(user_id):
    """The active user with this id, or None."""
    return db.session.scalar(sa.select(User).where(User.id == user_id, User.is_active.is_(True)))


def _require_admin(actor):
    permissions.require(permissions.can_administer_users(actor), "Only admins may manage user accounts")


def _is_last_active_admin(user):
    if user.role != "admin" or not user.is_active:
        return False
    others = db.session.scalar(
        sa.select(sa.func.count()).where(User.role == "admin", User.is_active.is_(True), User.id != user.id)
    )
    return others == 0


def view_user(actor, user_id):
    permissions.require(permissions.sees_all_tasks(actor), "Only managers and admins may view other accounts")
    return get_user(user_id)


def admin_create_user(actor, **data):
    _require_admin(actor)
    user = create_user(**data)
    audit.record(actor, "user.create", "user", user.id, {"username": user.username, "role": user.role})
    db.session.commit()
    return user


def admin_update_user(actor, user_id, changes):
    """A role change is audited as `user.role_changed`, the other fields as `user.update`."""
    _require_admin(actor)
    user = get_user(user_id)
    if changes.get("role", "admin") != "admin" and _is_last_active_admin(user):
        raise ApiError(409, "The last active admin cannot be demoted")
    _ensure_unique(email=changes.get("email"), exclude_id=user.id)
    changed = audit.diff(user, changes)
    for field in changed:
        setattr(user, field, changes[field])
    role_change = changed.pop("role", None)
    if role_change:
        audit.record(actor, "user.role_changed", "user", user.id, {"role": role_change})
    if changed:
        audit.record(actor, "user.update", "user", user.id, changed)
    db.session.commit()
    return user


def admin_reset_password(actor, user_id, new_password):
    """Set another user's password; every session of theirs ends."""
    _require_admin(actor)
    user = get_user(user_id)
    _store_password(user, new_password)
    audit.record(actor, "user.password_reset", "user", user.id)
    end_sessions(user, actor, "password_reset")
    db.session.commit()
    return user


def admin_set_active(actor, user_id, active):
    """Activate or deactivate; either ends the user's tokens and sockets (reactivation revives no old token)."""
    _require_admin(actor)
    user = get_user(user_id)
    if not active and user.id == actor.id:
        raise ApiError(409, "You cannot deactivate yourself")
    if not active and _is_last_active_admin(user):
        raise ApiError(409, "The last active admin cannot be deactivated")
    return set_active(user, active, actor)
