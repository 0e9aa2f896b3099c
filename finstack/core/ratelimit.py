"""Rate limits: who a request is counted against, the per-route limits, and what a trip does.

The counting is the `limits` library's (fixed windows): in memory, or in Redis when REDIS_URL is set so that the
limits hold across processes. The default limit is one budget across every endpoint (routes with limits of their
own count against it too), per signed-in user (a valid access token), else per client address. The client address
is the connection's (`request.remote_addr`); only `PROXY_FIX_X_FOR` trusted proxies (ProxyFix in `create_app`) may
change it. A trip answers 429 `rate_limited` with `Retry-After` and is audited (`auth.rate_limited`).

Why not Flask-Limiter, which did this until 2026-12: its per-request machinery (limit resolution, exemption scopes,
meta limits, request context bookkeeping) cost ~0.3 ms of CPU on every request, a tenth of a task-list page; the
few features used here are the check below.
"""

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import SQLAlchemyError

from finstack.audit import service as audit
from finstack.errors import error_response
from finstack.extensions import db

log = logging.getLogger(__name__)

AUDIT_ACTION = "auth.rate_limited"
DEFAULT_SCOPE = "global"
STATE_KEY = "finstack_rate_limits"


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


@dataclass(frozen=True)
class RouteLimit:
    """A route's own limit: the setting holding its rate, and whom a request counts against (None: not counted)."""

    config_key: str
    key: Callable[[], str | None]


# A view's qualified name -> its own limits, outermost decorator first. Keyed by name, not by the function object,
# because the function the app registers is a wrapper (functools.wraps keeps the name).
_route_limits = {}


def _qualified_name(view):
    return f"{view.__module__}.{view.__qualname__}"


def _route_limit(config_key, key):
    def decorator(view):
        _route_limits.setdefault(_qualified_name(view), []).insert(0, RouteLimit(config_key, key))
        return view

    return decorator


def per_ip(config_key):
    """Limit a route per client address to the limit in `config_key`."""
    return _route_limit(config_key, client_ip)


def per_login_account(config_key):
    """Limit a login route per account name (requests naming no account are left to the per-address limit)."""
    return _route_limit(config_key, login_account)


class _AppLimits:
    """One app's counter and, per endpoint, the limits its requests count against (resolved on first use)."""

    def __init__(self, app):
        self.config = app.config
        self.counter = FixedWindowRateLimiter(storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))
        self.by_endpoint = {}

    def checks(self, endpoint):
        """`(scope, rate items, key)` for each limit a request to `endpoint` counts against: the default first."""
        checks = self.by_endpoint.get(endpoint)
        if checks is None:
            view = current_app.view_functions[endpoint]
            checks = [(DEFAULT_SCOPE, parse_many(self.config["DEFAULT_RATE_LIMIT"]), user_or_ip)]
            checks += [
                (endpoint, parse_many(self.config[limit.config_key]), limit.key)
                for limit in _route_limits.get(_qualified_name(view), ())
            ]
            self.by_endpoint[endpoint] = checks
        return checks


def _count_request():
    """Count the request against each of its limits; the first one exceeded answers 429. Requests matching no route
    (404, 405) are not counted."""
    endpoint = request.endpoint
    if endpoint is None:
        return None
    limits = current_app.extensions[STATE_KEY]
    for scope, items, key in limits.checks(endpoint):
        identity = key()
        if identity is None:
            continue
        for item in items:
            if not limits.counter.hit(item, identity, scope):
                return _tripped(limits.counter, item, identity, scope)
    return None


def _tripped(counter, item, identity, scope):
    log.info("Rate limit %s exceeded by %s at %s", item, identity, scope)
    _audit_trip(item, item.key_for(identity, scope))
    reset_at = counter.get_window_stats(item, identity, scope).reset_time
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return error_response(
        429,
        "Too many requests",
        {"limit": str(item), "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
        code="rate_limited",
    )


def _audit_trip(item, key):
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
                "limit": str(item),
                "key": key,
            },
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("Could not audit a rate-limit trip")


def init_app(app):
    """Count requests in Redis when REDIS_URL is set (limits hold across processes), else in this process's memory;
    nothing is counted (or checked) when RATELIMIT_ENABLED is false."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    if not app.config["RATELIMIT_ENABLED"]:
        return
    app.extensions[STATE_KEY] = _AppLimits(app)
    app.before_request(_count_request)
