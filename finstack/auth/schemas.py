from marshmallow import ValidationError, fields, validate, validates_schema

from finstack.core.schemas import BaseSchema
from finstack.users.schemas import UserOut


class LoginIn(BaseSchema):
    """Sign in with `username` (which may also hold an e-mail address) or `email`, and `password`."""

    username = fields.String(validate=validate.Length(min=1, max=254))
    email = fields.String(validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))

    @validates_schema
    def _one_login(self, data, **kwargs):
        if not data.get("username") and not data.get("email"):
            raise ValidationError("Give a username or an email.", "username")


class TokenPairOut(BaseSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds"})
    user = fields.Nested(UserOut, required=True)


class RefreshedTokensOut(BaseSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True, metadata={"description": "Use this one next time"})
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds"})


class LogoutIn(BaseSchema):
    refresh_token = fields.String(
        validate=validate.Length(max=4096),
        metadata={"description": "Also end the sign-in of this refresh token (when it is another one)"},
    )
