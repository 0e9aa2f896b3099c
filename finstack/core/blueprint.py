"""The blueprint every domain uses: flask-smorest's, with FinStack's parsing and auth conventions."""

from functools import wraps

import marshmallow as ma
from flask import current_app, g, request
from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from finstack.core.json_provider import UnstorableTextError
from finstack.errors import ApiError

BEARER = [{"bearerAuth": []}]
JSON_REQUIRED = "Send the body as JSON, with the header Content-Type: application/json"
QUERY_MEMO_SIZE = 1024


class StrictParser(FlaskParser):
    """Bad input is a 400, unknown fields are refused wherever they come from, and a JSON endpoint reads only JSON.

    JSON bodies are decoded by the app's JSON provider, which refuses text the database cannot store.
    """

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, ma.RAISE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsed_queries = {}

    def _process_location_data(self, location_data, schema, req, location, unknown, validators):
        """A query string a `PARSE_ONCE` schema has loaded before is answered from what it loaded then.

        Such a schema's load is a function of the query string alone (no time, user or config in it) and gives flat
        values, so a query string is loaded once per schema (at most QUERY_MEMO_SIZE, emptied when full) and each
        request gets its own copy; a query string that fails is refused by a full load every time."""
        if location != "query" or validators or not getattr(schema, "PARSE_ONCE", False):
            return super()._process_location_data(location_data, schema, req, location, unknown, validators)
        key = (schema, unknown, req.query_string)
        data = self._parsed_queries.get(key)
        if data is None:
            data = super()._process_location_data(location_data, schema, req, location, unknown, validators)
            if len(self._parsed_queries) >= QUERY_MEMO_SIZE:
                self._parsed_queries.clear()
            self._parsed_queries[key] = data
        return {name: list(value) if isinstance(value, list) else value for name, value in data.items()}

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


def _refuse_missing_body():
    if not request.get_data(cache=True):
        raise ApiError(400, "A JSON body is required", {"json": ["No body was sent."]}, code="body_required")


def _refuse_form_fields():
    if request.form:
        raise ApiError(
            400, "Validation failed", {key: ["Unknown field."] for key in request.form}, code="validation_failed"
        )


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        """flask-smorest's `arguments`, refusing what the spec says is not accepted.

        A JSON body documented as required is refused (400 `body_required`) when none is sent; pass
        `required=False` where sending nothing is meaningful (every field optional, e.g. logout). A multipart
        upload refuses form fields besides its files, as the documented schema allows no other property.
        """
        if isinstance(schema, type):  # one instance, not one per request (webargs instantiates a class each time)
            schema = schema()
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location == "json" and required:
            check = _refuse_missing_body
        elif location == "files":
            check = _refuse_form_fields
        else:
            return decorator

        def checked(view):
            parsed = decorator(view)

            @wraps(parsed)
            def wrapper(*args, **kwargs):
                check()
                return parsed(*args, **kwargs)

            return wrapper

        return checked

    def auth_required(self, refresh=False, user_row=False):
        """`jwt_required` that also marks the endpoint as needing a bearer token in the OpenAPI spec.

        `user_row=True`: the view only reads the user's columns, so `current_user` is a row of them, not an ORM object
        (`finstack.auth.service.session_user`); the checks are the same."""

        def decorator(view):
            protected = jwt_required(refresh=refresh)(view)

            @wraps(view)
            def wrapper(*args, **kwargs):
                g.finstack_user_row = user_row
                return protected(*args, **kwargs)

            return self.doc(security=BEARER)(wrapper)

        return decorator
