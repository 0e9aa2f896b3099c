"""Rate limits: who a request is counted against, the per-route limits, and what a trip does.

The limiter itself is `finstack.extensions.limiter`. Its default limit is one budget across every endpoint (routes
with limits of their own count against it too), per signed-in user (a valid access token), else per client address.
The client address is the connection's (`request.remote_addr`); only `PROXY_FIX_X_FOR` trusted proxies (ProxyFix in
`create_app`) may change it. A trip answers 429 `rate_limited` with `Retry-After` and is audited (`auth.rate_limited`).
"""

import hashlib
import logging
import math
import time

from flask import current_app, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_limiter import RateLimitExceeded
from jwt import PyJWTError
from sqlalchemy.exc import SQLAlchemyError

from finstack.audit import service as audit
from finstack.errors import error_response
from finstack.extensions import db, limiter

log = logging.getLogger(__name__)

AUDIT_ACTION = "auth.rate_limited"


def client_ip():
    return f"ip:{request.remote_addr or 'unknown'}"


def user_or_ip():
    """The signed-in user's id when the request carries a valid access token, else the client address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            claims = decode_token(token.strip())
        except (PyJWTError, JWTExtendedException):
            return client_ip()
        if claims.get("type") == "access" and claims.get("sub"):
            return f"user:{claims['sub']}"
    return client_ip()


def login_account():
    """The account name a login names (username or e-mail, lower-cased), hashed: no names in the limit store."""
    body = request.get_json(silent=True)
    name = (body.get("username") or body.get("email")) if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    return "account:" + hashlib.sha256(name.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


def _configured(key):
    return lambda: current_app.config[key]


def per_ip(config_key):
    """Limit a route per client address to the limit in `config_key`."""
    return limiter.limit(_configured(config_key), key_func=client_ip)


def per_login_account(config_key):
    """Limit a login route per account name (requests naming no account are left to the per-address limit)."""
    return limiter.limit(
        _configured(config_key), key_func=lambda: login_account() or "", exempt_when=lambda: login_account() is None
    )


def _audit_trip(request_limit):
    """Record the trip; committed on its own, because the request it belongs to fails."""
    try:
        audit.record(
            None,
            AUDIT_ACTION,
            "request",
            None,
            {
                "endpoint": request.endpoint,
                "method": request.method,
                "path": request.path,
                "limit": str(request_limit.limit),
                "key": request_limit.key,
            },
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("Could not audit a rate-limit trip")


def _too_many_requests(error):
    current = limiter.current_limit
    retry_after = max(1, math.ceil(current.reset_at - time.time())) if current is not None else 1
    return error_response(
        429,
        "Too many requests",
        {"limit": str(error.limit.limit), "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
        code="rate_limited",
    )


def init_app(app):
    """Bind the limiter: Redis storage when REDIS_URL is set (limits hold across processes), else memory."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    app.config["RATELIMIT_ON_BREACH_CALLBACK"] = _audit_trip
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    limiter.init_app(app)
