"""One error shape everywhere: `{"error": "<message>", "code": "<stable code>", "details": {...}}`.

`code` is for programs (a front end branches on it), `error` for people. Codes come from one table, `ERROR_CODES`;
an error that names no code gets its status's default (`STATUS_CODES`). Socket.IO refusals and acks use the same codes.
The table lives in `finstack.core.error_codes` (so the OpenAPI schema can list it) and is re-exported here.
No handler passes an exception's own text to the client: messages are ours, the exception goes to the log.
"""

import logging

from flask import current_app, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from finstack.core.error_codes import ERROR_CODES, STATUS_CODES
from finstack.core.logs import current_request_id
from finstack.extensions import db, jwt

log = logging.getLogger(__name__)

# webargs reports errors per request location; the client only needs the fields.
_LOCATIONS = ("json", "query", "querystring", "form", "files", "view_args", "path", "headers")


def code_for(status, message=None):
    """The default code of an error with `status` (validation failures have their own)."""
    if status == 400 and message == "Validation failed":
        return "validation_failed"
    return STATUS_CODES.get(status, "internal_error" if status >= 500 else "bad_request")


class ApiError(Exception):
    """Raised by services and routes; rendered as the error shape with `status` and `code` (default: by status)."""

    def __init__(self, status, message, details=None, headers=None, code=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        self.code = code or code_for(status, message)
        if self.code not in ERROR_CODES:
            raise ValueError(f"Unknown error code {self.code!r}: add it to ERROR_CODES")


def error_body(message, code, details=None):
    return {"error": message, "code": code, "details": details or {}}


def error_response(status, message, details=None, headers=None, code=None):
    response = jsonify(error_body(message, code or code_for(status, message), details))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_locations(messages):
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat = {}
    for key, value in messages.items():
        if key in _LOCATIONS and isinstance(value, dict):
            flat.update(value)
        elif key in _LOCATIONS:
            flat["_schema"] = value
        else:
            flat[key] = value
    return flat


def _handle_api_error(error):
    db.session.rollback()  # whatever the request wrote before the error must not be committed later
    if error.status >= 500:
        log.error("API error %s: %s", error.status, error.message)
    return error_response(error.status, error.message, error.details, error.headers, error.code)


def _handle_validation_error(error):
    db.session.rollback()
    return error_response(400, "Validation failed", _flatten_locations(error.messages))


def _handle_http_exception(error):
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        details = _flatten_locations(messages)
        if details == {"_schema": ["Invalid JSON body."]}:
            return error_response(400, "Malformed JSON body", details, code="malformed_json")
        return error_response(400, "Validation failed", details, data.get("headers"))
    headers = {}
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    details = {}
    if error.code == 413:
        details = {"max_bytes": current_app.config.get("MAX_CONTENT_LENGTH")}
    # The class's own description, never the instance's: that one may carry an exception's text.
    return error_response(error.code, type(error).description or error.name, details, headers)


def _handle_integrity_error(error):
    db.session.rollback()
    log.info("Integrity error: %s", error.orig)
    return error_response(409, "Conflict with existing data")


def _handle_stale_data(error):
    db.session.rollback()
    return error_response(409, "The record was changed by someone else; reload and try again", code="version_conflict")


def _handle_database_error(error):
    """A connection the database dropped (a restart, a failover) is found out on use, as the pool does not ping on
    checkout: SQLAlchemy then discards the whole pool, so the client's retry gets fresh connections."""
    if not error.connection_invalidated:
        return _handle_unexpected(error)
    db.session.rollback()
    log.warning("Database connection lost: %s", error.orig)
    return error_response(503, "The database connection was lost; try again", headers={"Retry-After": "1"})


def _handle_unexpected(error):
    db.session.rollback()
    log.exception("Unhandled error")
    return error_response(500, "Internal server error", {"request_id": current_request_id()})


def register_error_handlers(app):
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(ValidationError, _handle_validation_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(IntegrityError, _handle_integrity_error)
    app.register_error_handler(StaleDataError, _handle_stale_data)
    app.register_error_handler(DBAPIError, _handle_database_error)
    app.register_error_handler(Exception, _handle_unexpected)


@jwt.unauthorized_loader
def _missing_token(reason):
    log.debug("No usable token: %s", reason)
    return error_response(
        401, "Missing or malformed token: send the header Authorization: Bearer <access token>", code="token_missing"
    )


@jwt.invalid_token_loader
def _invalid_token(reason):
    log.debug("Invalid token: %s", reason)  # the decoder's words stay in the log
    return error_response(401, "Invalid token", code="token_invalid")


@jwt.expired_token_loader
def _expired_token(header, payload):
    return error_response(401, "Token has expired", code="token_expired")


@jwt.revoked_token_loader
def _revoked_token(header, payload):
    return error_response(401, "Token has been revoked", code="token_revoked")


@jwt.user_lookup_error_loader
def _unknown_user(header, payload):
    return error_response(401, "Token no longer valid: the account is missing or deactivated", code="user_inactive")


@jwt.needs_fresh_token_loader
def _needs_fresh(header, payload):
    return error_response(401, "Fresh login required", code="fresh_token_required")


@jwt.token_verification_failed_loader
def _verification_failed(header, payload):
    return error_response(401, "Token verification failed", code="token_invalid")
