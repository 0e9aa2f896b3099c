from flask import current_app
from flask_jwt_extended import current_user, get_jwt

from finstack.auth import bp, service
from finstack.auth.schemas import AccessTokenOut, LoginIn, LogoutIn, TokenPairOut
from finstack.core.schemas import MessageSchema
from finstack.errors import ApiError
from finstack.users import service as users
from finstack.users.schemas import RegisterIn, UserOut


@bp.post("/register")
@bp.arguments(RegisterIn)
@bp.response(201, UserOut)
def register(data):
    """Create a member account."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise ApiError(403, "Self-registration is disabled; ask an administrator for an account")
    return users.create_user(**data)


@bp.post("/login")
@bp.arguments(LoginIn)
@bp.response(200, TokenPairOut)
def login(data):
    """Exchange a username or e-mail and a password for an access and a refresh token."""
    return service.login(data.get("username") or data["email"], data["password"])


@bp.post("/refresh")
@bp.auth_required(refresh=True)
@bp.response(200, AccessTokenOut)
def refresh():
    """Send the refresh token as the Bearer token to get a new access token."""
    return service.issue_access_token(current_user)


@bp.post("/logout")
@bp.auth_required()
@bp.arguments(LogoutIn, required=False)
@bp.response(200, MessageSchema)
def logout(data):
    """Revoke the presented access token, and the refresh token if it is given."""
    service.logout(current_user, get_jwt(), data.get("refresh_token"))
    return {"message": "Logged out"}


@bp.get("/me")
@bp.auth_required()
@bp.response(200, UserOut)
def me():
    return current_user
