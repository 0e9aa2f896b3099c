"""One error shape everywhere: `{"error": "<message>", "details": {...}}`."""

import logging

from flask import current_app, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from finstack.extensions import db, jwt

log = logging.getLogger(__name__)

# webargs reports errors per request location; the client only needs the fields.
_LOCATIONS = ("json", "query", "querystring", "form", "files", "view_args", "path", "headers")


class ApiError(Exception):
    """Raised by services and routes; rendered as the error shape with `status`."""

    def __init__(self, status, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(status, message, details=None, headers=None):
    response = jsonify({"error": message, "details": details or {}})
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
    return error_response(error.status, error.message, error.details, error.headers)


def _handle_validation_error(error):
    db.session.rollback()
    return error_response(400, "Validation failed", _flatten_locations(error.messages))


def _handle_http_exception(error):
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        details = _flatten_locations(messages)
        if details == {"_schema": ["Invalid JSON body."]}:
            return error_response(400, "Malformed JSON body", details)
        return error_response(400, "Validation failed", details, data.get("headers"))
    headers = {}
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    details = {}
    if error.code == 413:
        details = {"max_bytes": current_app.config.get("MAX_CONTENT_LENGTH")}
    return error_response(error.code, error.description or error.name, details, headers)


def _handle_integrity_error(error):
    db.session.rollback()
    log.info("Integrity error: %s", error.orig)
    return error_response(409, "Conflict with existing data")


def _handle_stale_data(error):
    db.session.rollback()
    return error_response(409, "The record was changed by someone else; reload and try again")


def _handle_unexpected(error):
    db.session.rollback()
    log.exception("Unhandled error")
    return error_response(500, "Internal server error")


def register_error_handlers(app):
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(ValidationError, _handle_validation_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(IntegrityError, _handle_integrity_error)
    app.register_error_handler(StaleDataError, _handle_stale_data)
    app.register_error_handler(Exception, _handle_unexpected)


@jwt.unauthorized_loader
def _missing_token(reason):
    return error_response(401, "Missing or malformed authorization token", {"reason": reason})


@jwt.invalid_token_loader
def _invalid_token(reason):
    return error_response(401, "Invalid token", {"reason": reason})


@jwt.expired_token_loader
def _expired_token(header, payload):
    return error_response(401, "Token has expired")


@jwt.revoked_token_loader
def _revoked_token(header, payload):
    return error_response(401, "Token has been revoked")


@jwt.user_lookup_error_loader
def _unknown_user(header, payload):
    return error_response(401, "Token no longer valid: the account is missing or deactivated")


@jwt.needs_fresh_token_loader
def _needs_fresh(header, payload):
    return error_response(401, "Fresh login required")


@jwt.token_verification_failed_loader
def _verification_failed(header, payload):
    return error_response(401, "Token verification failed")
