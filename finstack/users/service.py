"""User accounts: creation, profile, passwords, the active-user directory."""

import sqlalchemy as sa
from flask import current_app

from finstack import realtime
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
