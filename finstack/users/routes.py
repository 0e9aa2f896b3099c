from flask_jwt_extended import current_user

from finstack.auth import service as auth
from finstack.auth.schemas import TokenPairOut
from finstack.core import ratelimit
from finstack.core.schemas import page_of
from finstack.users import bp, service
from finstack.users.schemas import (
    AdminUserCreate,
    AdminUserUpdate,
    PasswordChange,
    PasswordReset,
    ProfileUpdate,
    UserListQuery,
    UserOut,
)


@bp.get("")
@bp.auth_required()
@bp.arguments(UserListQuery, location="query")
@bp.response(200, page_of(UserOut))
def list_users(query):
    """The directory: active users, for assigning tasks. `search` matches name, username or e-mail literally.
    Managers and admins may include deactivated accounts (`include_inactive=true`, or `is_active=false`)."""
    return service.list_users(current_user, **query)


@bp.get("/me")
@bp.auth_required()
@bp.response(200, UserOut)
def get_me():
    return current_user


@bp.put("/me")
@bp.auth_required()
@bp.arguments(ProfileUpdate)
@bp.response(200, UserOut)
def update_me(changes):
    """Update your full name, e-mail, phone or time zone."""
    return service.update_profile(current_user, **changes)


@bp.put("/me/password")
@ratelimit.per_ip("PASSWORD_RATE_LIMIT")
@bp.auth_required()
@bp.arguments(PasswordChange)
@bp.response(200, TokenPairOut)
def change_my_password(data):
    """Every session of yours ends (other devices, sockets); this one continues with the tokens returned."""
    return auth.change_password(current_user, data["current_password"], data["new_password"])


@bp.post("")
@bp.auth_required()
@bp.arguments(AdminUserCreate)
@bp.response(201, UserOut)
def create_user(data):
    """Admins: create an account with any role and a department."""
    return service.admin_create_user(current_user, **data)


@bp.get("/<uuid:user_id>")
@bp.auth_required()
@bp.response(200, UserOut)
def get_user(user_id):
    """Managers and admins: any account, active or not."""
    return service.view_user(current_user, user_id)


@bp.patch("/<uuid:user_id>")
@bp.auth_required()
@bp.arguments(AdminUserUpdate)
@bp.response(200, UserOut)
def update_user(changes, user_id):
    """Admins: change role, department, names, e-mail or phone. The last active admin stays an admin."""
    return service.admin_update_user(current_user, user_id, changes)


@bp.post("/<uuid:user_id>/reset-password")
@ratelimit.per_ip("PASSWORD_RATE_LIMIT")
@bp.auth_required()
@bp.arguments(PasswordReset)
@bp.response(200, UserOut)
def reset_password(data, user_id):
    return service.admin_reset_password(current_user, user_id, data["new_password"])


@bp.post("/<uuid:user_id>/deactivate")
@bp.auth_required()
@bp.response(200, UserOut)
def deactivate(user_id):
    """Admins: the account can no longer sign in, and its tokens and sockets stop working at once."""
    return service.admin_set_active(current_user, user_id, False)


@bp.post("/<uuid:user_id>/activate")
@bp.auth_required()
@bp.response(200, UserOut)
def activate(user_id):
    return service.admin_set_active(current_user, user_id, True)
