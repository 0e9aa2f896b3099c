"""Which browser origins may open a socket: CORS_ORIGIN's list, and the server's own origin.

Engine.IO checks the Origin header of every Socket.IO request (clients outside a browser usually send none, or
their own URL). An explicit list would otherwise shut out pages served from the API's own host.
"""


def origin_checker(configured):
    allowed = frozenset(configured)

    def is_allowed(origin, environ):
        if origin in allowed:
            return True
        own = {f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"}
        if "HTTP_X_FORWARDED_HOST" in environ or "HTTP_X_FORWARDED_PROTO" in environ:  # behind a proxy
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http")).split(",")[0]
            host = environ.get("HTTP_X_FORWARDED_HOST", environ.get("HTTP_HOST", "")).split(",")[0]
            own.add(f"{scheme.strip()}://{host.strip()}")
        return origin in own

    return is_allowed
