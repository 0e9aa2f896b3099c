"""The stable error codes, in a module of their own so that schemas (the OpenAPI spec) can list them too."""

# Every code a client may see, with what it means. The README and the OpenAPI spec list this table.
ERROR_CODES = {
    "validation_failed": "The request's body, query string or form did not validate; `details` names the fields",
    "malformed_json": "The body is not valid JSON",
    "body_required": "The endpoint needs a JSON body and none was sent",
    "unsupported_media_type": "The body was sent with a Content-Type this endpoint does not read",
    "bad_request": "The request cannot be served as sent",
    "token_missing": "No access token was sent",
    "token_invalid": "The token is not one this server issued, or is of the wrong type",
    "token_expired": "The token has expired: refresh it or sign in again",
    "token_revoked": "The token was revoked (logout, password change, refresh-token reuse)",
    "user_inactive": "The token's account is missing or deactivated",
    "fresh_token_required": "This action needs a token from a fresh sign-in",
    "invalid_credentials": "Wrong username/e-mail or password",
    "unauthorized": "Authentication is required",
    "forbidden": "You are signed in but may not do this",
    "account_inactive": "The account is deactivated",
    "not_found": "No such resource (or you may not know it exists)",
    "method_not_allowed": "The endpoint does not accept this HTTP method",
    "conflict": "The request conflicts with the stored data (a duplicate, a rule such as the last admin)",
    "version_conflict": "The record was changed by someone else since you read it; reload and retry",
    "payload_too_large": "The body or the file is larger than allowed",
    "unprocessable": "The request is well-formed but cannot be processed",
    "rate_limited": "Too many requests; wait for Retry-After seconds",
    "internal_error": "An unexpected server error; `details.request_id` identifies it in the logs",
    "service_unavailable": "A service the server needs is unavailable",
}

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
