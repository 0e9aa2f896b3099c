"""The blueprint every domain uses: flask-smorest's, with FinStack's parsing and auth conventions."""

from functools import wraps

import marshmallow as ma
from flask import current_app
from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from finstack.core.json_provider import UnstorableTextError
from finstack.errors import ApiError

BEARER = [{"bearerAuth": []}]
JSON_REQUIRED = "Send the body as JSON, with the header Content-Type: application/json"


class StrictParser(FlaskParser):
    """Bad input is a 400, unknown fields are refused wherever they come from, and a JSON endpoint reads only JSON.

    JSON bodies are decoded by the app's JSON provider, which refuses text the database cannot store.
    """

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, ma.RAISE)

    def load_json(self, req, schema):
        try:
            return super().load_json(req, schema)
        except RecursionError as exc:  # nested deeper than the JSON decoder follows: malformed, not a server error
            return self._handle_invalid_json_error(exc, req)
        except UnstorableTextError as exc:
            raise ma.ValidationError(exc.errors) from None

    def _raw_load_json(self, req):
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if body:  # a body this endpoint would otherwise ignore: say how to send it
                raise ApiError(415, JSON_REQUIRED, code="unsupported_media_type")
            return core.missing
        return current_app.json.loads(body.decode("utf-8"))  # a UnicodeDecodeError is malformed JSON


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def auth_required(self, refresh=False):
        """`jwt_required` that also marks the endpoint as needing a bearer token in the OpenAPI spec."""

        def decorator(view):
            protected = jwt_required(refresh=refresh)(view)

            @wraps(view)
            def wrapper(*args, **kwargs):
                return protected(*args, **kwargs)

            return self.doc(security=BEARER)(wrapper)

        return decorator
