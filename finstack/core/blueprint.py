"""The blueprint every domain uses: flask-smorest's, with FinStack's parsing and auth conventions."""

from functools import wraps

import marshmallow as ma
from flask import request
from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from finstack.errors import ApiError

BEARER = [{"bearerAuth": []}]


class StrictParser(FlaskParser):
    """Bad input is a 400, and unknown fields are refused wherever they come from."""

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, ma.RAISE)

    def load_json(self, req, schema):
        try:
            return super().load_json(req, schema)
        except RecursionError as exc:  # nested deeper than the JSON decoder follows: malformed, not a server error
            return self._handle_invalid_json_error(exc, req)


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

    def auth_required(self, refresh=False):
        """`jwt_required` that also marks the endpoint as needing a bearer token in the OpenAPI spec."""

        def decorator(view):
            protected = jwt_required(refresh=refresh)(view)

            @wraps(view)
            def wrapper(*args, **kwargs):
                return protected(*args, **kwargs)

            return self.doc(security=BEARER)(wrapper)

        return decorator
