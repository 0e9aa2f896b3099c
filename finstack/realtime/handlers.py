"""The plumbing every client event shares: who is asking, the payload, errors as acks, the database session."""

import functools
import logging

from flask import request, session
from marshmallow import ValidationError

from finstack.errors import ApiError, code_for, error_body
from finstack.extensions import db
from finstack.realtime import service

log = logging.getLogger(__name__)


def error_ack(message, details=None, code=None):
    """The REST error shape as an ack: `{"error", "code", "details"}`."""
    return error_body(message, code or code_for(400, message), details)


def client_event(schema=None):
    """Decorate a Socket.IO event handler `fn(user, data)`.

    The payload is loaded with `schema` (a BaseSchema: unknown fields and text the database cannot store are
    refused); whatever goes wrong becomes the ack `{"error", "code", "details"}` instead of an exception on the
    connection; the database session is rolled back on error and removed after every event, because a socket
    outlives the request that opened it.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def handler(*args):
            try:
                user = service.active_user(session["user_id"]) if "user_id" in session else None
                if user is None:
                    raise ApiError(401, "Your session has ended; connect again", code="user_inactive")
                if schema is None:
                    return fn(user, None)
                if len(args) != 1:
                    raise ValidationError("Send exactly one JSON object.")
                return fn(user, schema().load(args[0]))
            except ValidationError as error:
                db.session.rollback()
                details = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
                return error_ack("Validation failed", details)
            except ApiError as error:
                db.session.rollback()
                return error_ack(error.message, error.details, error.code)
            except Exception:
                db.session.rollback()
                log.exception("Socket event %s from %s failed", fn.__name__, getattr(request, "sid", None))
                return error_ack("Internal server error", code="internal_error")
            finally:
                db.session.remove()

        return handler

    return decorate
