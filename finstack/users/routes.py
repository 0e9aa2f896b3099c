from flask_jwt_extended import current_user

from finstack.core.schemas import MessageSchema, page_of
from finstack.users import bp, service
from finstack.users.schemas import PasswordChange, ProfileUpdate, UserListQuery, UserOut


@bp.get("")
@bp.auth_required()
@bp.arguments(UserListQuery, location="query")
@bp.response(200, page_of(UserOut))
def list_users(query):
    """Active users, for assigning tasks. `search` matches name, username or e-mail literally."""
    return service.list_active_users(**query)


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
    """Update your full name, e-mail or phone."""
    return service.update_profile(current_user, **changes)


@bp.put("/me/password")
@bp.auth_required()
@bp.arguments(PasswordChange)
@bp.response(200, MessageSchema)
def change_my_password(data):
    service.change_password(current_user, data["current_password"], data["new_password"])
    return {"message": "Password changed"}
