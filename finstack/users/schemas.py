from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, post_load, validate

from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery, PlainDump
from finstack.users.models import ROLES

USERNAME = validate.And(
    validate.Length(min=3, max=64),
    validate.Regexp(r"^[A-Za-z0-9_.-]+$", error="Use letters, digits, '.', '_' or '-'."),
)
PASSWORD = validate.Length(min=8, max=128)


def EmailField(**kwargs):  # noqa: N802 - a field factory
    return fields.Email(validate=validate.Length(max=254), **kwargs)


def FullNameField(**kwargs):  # noqa: N802 - a field factory
    return fields.String(validate=validate.And(validate.Length(min=1, max=120), NotBlank()), **kwargs)


def PhoneField(**kwargs):  # noqa: N802 - a field factory
    return fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^[0-9+()\- .]{3,32}$", error="Not a valid phone number."),
        **kwargs,
    )


class KnownZone(validate.Validator):
    """An IANA zone name zoneinfo knows ("Europe/Berlin", "UTC"); not an offset or an abbreviation."""

    openapi = {"x-format": "iana-time-zone"}

    def __call__(self, value):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError("Not a known IANA time zone, such as Europe/Berlin or UTC.") from exc
        return value


TIMEZONE = validate.And(validate.Length(min=1, max=64), KnownZone())


class NormalisedUserInput(BaseSchema):
    """Trims names and lower-cases e-mail addresses, which are unique regardless of case."""

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("email"):
            data["email"] = data["email"].strip().lower()
        if data.get("full_name"):
            data["full_name"] = data["full_name"].strip()
        return data


class UserOut(BaseSchema):
    id = fields.UUID(dump_only=True)
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    phone = fields.String(allow_none=True)
    role = fields.String()
    department = fields.String(allow_none=True)
    is_active = fields.Boolean()
    timezone = fields.String(metadata={"description": "IANA zone name; recurring tasks compute their dates in it"})
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class UserBrief(PlainDump, BaseSchema):
    """A user as other records show them (a task's assignee or creator)."""

    id = fields.UUID()
    username = fields.String()
    full_name = fields.String()


class RegisterIn(NormalisedUserInput):
    username = fields.String(required=True, validate=USERNAME)
    email = EmailField(required=True)
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    full_name = FullNameField(required=True)
    phone = PhoneField()


class ProfileUpdate(NormalisedUserInput):
    full_name = FullNameField()
    email = EmailField()
    phone = PhoneField()
    timezone = fields.String(validate=TIMEZONE, metadata={"description": "IANA zone name, such as Europe/Berlin"})


class PasswordChange(BaseSchema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)


class UserListQuery(PageQuery):
    search = fields.String(validate=validate.Length(min=1, max=100))
    role = fields.String(validate=validate.OneOf(ROLES))
    department = fields.String(validate=validate.Length(min=1, max=64))
    is_active = fields.Boolean(metadata={"description": "Managers and admins: `false` lists deactivated accounts"})
    include_inactive = fields.Boolean(
        load_default=False,
        metadata={"description": "Managers and admins: list deactivated accounts too (members get 403)"},
    )


DEPARTMENT = validate.Length(min=1, max=64)


class AdminUserCreate(RegisterIn):
    role = fields.String(load_default="member", validate=validate.OneOf(ROLES))
    department = fields.String(allow_none=True, validate=DEPARTMENT)


class AdminUserUpdate(NormalisedUserInput):
    role = fields.String(validate=validate.OneOf(ROLES))
    department = fields.String(allow_none=True, validate=DEPARTMENT)
    full_name = FullNameField()
    email = EmailField()
    phone = PhoneField()


class PasswordReset(BaseSchema):
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)
