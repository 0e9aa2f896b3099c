"""User accounts: creation, profile, passwords, the active-user directory."""

import sqlalchemy as sa
from flask import current_app

from finstack import realtime
from finstack.audit import service as audit
from finstack.core import permissions
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
    """The user whose username, or e-mail address in any case, is `login`."""
    login = login.strip()
    return db.session.scalar(sa.select(User).where(sa.or_(User.username == login, User.email == login.lower())))


def _ensure_unique(username=None, email=None, exclude_id=None):
    conflicts = {}
    for field, column, value in (("username", User.username, username), ("email", User.email, email)):
        if value is None:
            continue
        query = sa.select(User.id).where(column == value)
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


def set_password(user, new_password):
    user.set_password(new_password, current_app.config["PASSWORD_HASH_METHOD"])
    db.session.commit()


def change_password(user, current_password, new_password):
    if not user.check_password(current_password):
        raise ApiError(400, "Validation failed", {"current_password": ["Current password is incorrect."]})
    set_password(user, new_password)


def set_active(user, active):
    user.is_active = active
    db.session.commit()
    if not active:
        realtime.disconnect_user(user.id)  # at once, in every process (the periodic re-check is the safety net)
    return user


def list_active_users(*, page, per_page, search=None, role=None):
    query = sa.select(User).where(User.is_active.is_(True))
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
    return paginate(query.order_by(User.full_name, User.id), page=page, per_page=per_page)


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
    _require_admin(actor)
    user = get_user(user_id)
    if changes.get("role", "admin") != "admin" and _is_last_active_admin(user):
        raise ApiError(409, "The last active admin cannot be demoted")
    _ensure_unique(email=changes.get("email"), exclude_id=user.id)
    changed = audit.diff(user, changes)
    for field in changed:
        setattr(user, field, changes[field])
    if changed:
        audit.record(actor, "user.update", "user", user.id, changed)
    db.session.commit()
    return user


def admin_reset_password(actor, user_id, new_password):
    _require_admin(actor)
    user = get_user(user_id)
    audit.record(actor, "user.reset_password", "user", user.id)
    set_password(user, new_password)
    return user


def admin_set_active(actor, user_id, active):
    """Activate or deactivate; deactivation ends the user's tokens and sockets at once."""
    _require_admin(actor)
    user = get_user(user_id)
    if not active and user.id == actor.id:
        raise ApiError(409, "You cannot deactivate yourself")
    if not active and _is_last_active_admin(user):
        raise ApiError(409, "The last active admin cannot be deactivated")
    audit.record(actor, "user.activate" if active else "user.deactivate", "user", user.id)
    return set_active(user, active)
