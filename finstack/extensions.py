"""Extensions, created once and bound to an app in `create_app`."""

import copy
import threading
import time
from collections import OrderedDict
from datetime import timedelta
from importlib.resources import files

import jwt as pyjwt
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import g, has_request_context, send_from_directory
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from marshmallow import fields, validate
from sqlalchemy import MetaData

from finstack.core.schemas import ErrorSchema

# Stable constraint names so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Swagger UI and ReDoc, pinned through the PyPI package drf-spectacular-sidecar (plain static files; Django,
# its declared dependency, is never imported), so the docs pages work with no internet.
DOCS_ASSETS = files("drf_spectacular_sidecar") / "static" / "drf_spectacular_sidecar"
DOCS_ASSETS_PATH = "/docs/assets"
RESPONSE_SUFFIXES = ("Out", "Brief")
NUL_FREE = r"^[^\x00]*$"


def flat_validators(validators):
    """`validators` with every `validate.And` replaced by the validators it composes, recursively."""
    flat = []
    for validator in validators:
        if isinstance(validator, validate.And):
            flat.extend(flat_validators(validator.validators))
        else:
            flat.append(validator)
    return flat


def is_response_schema(schema):
    """Response schemas are named `...Out` or `...Brief`: everything they declare is always dumped."""
    schema_class = schema if isinstance(schema, type) else type(schema)
    return schema_class.__name__.endswith(RESPONSE_SUFFIXES)


class FinStackConverter(OpenAPIConverter):
    """apispec's converter, made to document what FinStack's schemas really enforce and produce.

    - Composed validators (`validate.And`) are documented like the validators they compose; a custom validator
      (or a custom field) documents itself with an `openapi` dict of JSON-schema keywords (e.g. `NotBlank`).
    - Every field of a response (`...Out`, `...Brief`) schema is marked required: a dump writes them all (`None` where
      the field allows it), so generated clients need no non-null assertions.
    """

    def init_attribute_functions(self, *args, **kwargs):
        super().init_attribute_functions(*args, **kwargs)
        self.add_attribute_function(self.field2documented_validators)
        self.add_attribute_function(self.field2nul_free)

    def field2property(self, field):
        validators = flat_validators(field.validators)
        if validators != list(field.validators):
            field = copy.copy(field)
            field.validators = validators
        return super().field2property(field)

    def field2documented_validators(self, field, **kwargs):
        documented = dict(getattr(field, "openapi", {}))
        for validator in field.validators:
            documented.update(getattr(validator, "openapi", {}))
        return documented

    def field2nul_free(self, field, ret, **kwargs):
        """Text is NUL-free everywhere (`BaseSchema` refuses NUL); a field with its own pattern states it there."""
        if isinstance(field, fields.String) and not field.dump_only and not {"pattern", "format"} & set(ret):
            return {"pattern": NUL_FREE}
        return {}

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        if is_response_schema(schema):
            jsonschema["required"] = sorted(jsonschema["properties"])
        return jsonschema


class FinStackPlugin(MarshmallowPlugin):
    Converter = FinStackConverter


class FinStackApi(Api):
    """flask-smorest's Api: FinStack's one error shape, its converter, and docs pages served from the app."""

    ERROR_SCHEMA = ErrorSchema

    def _init_spec(self, **kwargs):
        kwargs.setdefault("marshmallow_plugin", FinStackPlugin())
        super()._init_spec(**kwargs)

    def _register_swagger_ui_rule(self, blueprint):
        super()._register_swagger_ui_rule(blueprint)
        blueprint.add_url_rule(
            f"{DOCS_ASSETS_PATH}/<path:filename>",
            endpoint="docs_assets",
            view_func=lambda filename: send_from_directory(DOCS_ASSETS, filename, max_age=86400),
        )


# Tokens whose signature and claims this process has verified (with the decode settings they were verified under).
VERIFIED_TOKENS_SIZE = 4096


class VerifiedTokens:
    """A bounded LRU of verified claims by (decode settings, encoded token, CSRF value), shared by the threads (and
    green threads) of the process."""

    def __init__(self, size=VERIFIED_TOKENS_SIZE):
        self._size = size
        self._claims = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            claims = self._claims.get(key)
            if claims is not None:
                self._claims.move_to_end(key)
            return claims

    def remember(self, key, claims):
        with self._lock:
            self._claims[key] = claims
            if len(self._claims) > self._size:
                self._claims.popitem(last=False)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class FinStackJWTManager(JWTManager):
    """flask-jwt-extended's manager, decoding a token once per request, and verifying its signature once per process.

    The library decodes every token three times (its claims and header unverified, for a decode-key loader FinStack
    does not register, then verified), and the rate limiter's key decodes it again: here the verified decode alone
    runs, and its claims are kept for the rest of the request. Errors are the library's: an expired token still
    carries its header and claims for the expired-token callback.

    A token already verified in this process under the same decode settings is not verified again (`VerifiedTokens`):
    of its checks only the expiry can change with time (`iat` and `nbf` stay passed), so the expiry is checked on
    every request as PyJWT checks it, and an expired token takes the full decode, which refuses it as before.
    Revocation and the account are checked per request by the loaders, as ever."""

    verified_tokens = VerifiedTokens()

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        decoded = g.setdefault("finstack_decoded_tokens", {}) if has_request_context() else {}
        key = (encoded_token, csrf_value, allow_expired)
        if key not in decoded:
            decoded[key] = self._decode_once(encoded_token, csrf_value, allow_expired)
        return dict(decoded[key])

    def _decode_once(self, encoded_token, csrf_value, allow_expired):
        settings = self._decode_settings()
        if allow_expired:
            return self._decode_verified(encoded_token, csrf_value, allow_expired, settings)
        try:
            key = (tuple((name, _hashable(value)) for name, value in settings.items()), encoded_token, csrf_value)
            hash(key)
        except TypeError:  # a setting that cannot be a key (say an audience given as a set): verify every time
            return self._decode_verified(encoded_token, csrf_value, allow_expired, settings)
        claims = self.verified_tokens.get(key)
        if claims is None or _expired(claims, settings["leeway"]):
            claims = self._decode_verified(encoded_token, csrf_value, allow_expired, settings)
            self.verified_tokens.remember(key, claims)
        return claims

    @staticmethod
    def _decode_settings():
        return {
            "algorithms": jwt_config.decode_algorithms,
            "audience": jwt_config.decode_audience,
            "identity_claim_key": jwt_config.identity_claim_key,
            "issuer": jwt_config.decode_issuer,
            "leeway": jwt_config.leeway,
            "secret": jwt_config.decode_key,
            "verify_aud": jwt_config.decode_audience is not None,
            "verify_sub": jwt_config.verify_sub,
        }

    @staticmethod
    def _decode_verified(encoded_token, csrf_value, allow_expired, settings):
        kwargs = {**settings, "csrf_value": csrf_value, "encoded_token": encoded_token}
        try:
            return _decode_jwt(**kwargs, allow_expired=allow_expired)
        except pyjwt.ExpiredSignatureError as error:
            error.jwt_header = pyjwt.get_unverified_header(encoded_token)
            error.jwt_data = _decode_jwt(**kwargs, allow_expired=True)
            raise


def _expired(claims, leeway):
    """PyJWT's expiry check of verified `claims` (whose `exp`, if any, it has already read as a whole number)."""
    if "exp" not in claims:
        return False
    if isinstance(leeway, timedelta):
        leeway = leeway.total_seconds()
    return int(claims["exp"]) <= time.time() - leeway


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
jwt = FinStackJWTManager()
cors = CORS()
api = FinStackApi()
socketio = SocketIO()
