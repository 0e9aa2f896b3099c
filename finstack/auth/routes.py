from flask import current_app
from flask_jwt_extended import current_user, get_jwt

from finstack.auth import bp, service
from finstack.auth.schemas import LoginIn, LogoutIn, RefreshedTokensOut, TokenPairOut
from finstack.core import ratelimit
from finstack.core.schemas import MessageSchema
from finstack.errors import ApiError
from finstack.users import service as users
from finstack.users.schemas import RegisterIn, UserOut


@bp.post("/register")
@ratelimit.per_ip("REGISTER_RATE_LIMIT")
@bp.arguments(RegisterIn)
@bp.response(201, UserOut)
def register(data):
    """Create a member account."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise ApiError(403, "Self-registration is disabled; ask an administrator for an account")
    return users.create_user(**data)


@bp.post("/login")
@ratelimit.per_ip("LOGIN_RATE_LIMIT")
@ratelimit.per_login_account("LOGIN_ACCOUNT_RATE_LIMIT")
@bp.arguments(LoginIn)
@bp.response(200, TokenPairOut)
def login(data):
    """Exchange a username or e-mail and a password for an access and a refresh token."""
    return service.login(data.get("username") or data["email"], data["password"])


@bp.post("/refresh")
@bp.auth_required(refresh=True)
@bp.response(200, RefreshedTokensOut)
def refresh():
    """Send the refresh token as the Bearer token; get a new access token and a new refresh token.

    The refresh token sent is retired: sent again later (after the grace window), it ends the whole sign-in.
    """
    return service.refresh(current_user, get_jwt())


@bp.post("/logout")
@bp.auth_required()
@bp.arguments(LogoutIn, required=False)
@bp.response(200, MessageSchema)
def logout(data):
    """End the sign-in of the presented access token (all its tokens), and that of `refresh_token` if given."""
    service.logout(current_user, get_jwt(), data.get("refresh_token"))
    return {"message": "Logged out"}


@bp.get("/me")
@bp.auth_required()
@bp.response(200, UserOut)
def me():
    return current_user
