"""Logging: one line per record (JSON with LOG_FORMAT=json), a request id in every line of a request, access logs.

Standard library only at import time: gunicorn.conf.py loads this file by path in the master process, so gunicorn's
own lines share the format without Flask being imported before the eventlet worker patches the standard library.
"""

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is short and plain (it is echoed in a header and written to logs), else replaced.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:+=@/-]{1,128}$")
# Attributes every LogRecord has; anything else was passed with `extra=` and becomes a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "taskName"}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

access_log = logging.getLogger("finstack.access")


def current_request_id():
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    return flask.g.get("request_id")


def sane_request_id(value):
    """The incoming id if it is safe to echo and log, else a new one."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged in ("-" outside requests)."""

    def filter(self, record):
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return True


def _one_line(text):
    return text.replace("\r", "").replace("\n", " | ")


class TextFormatter(logging.Formatter):
    """`2026-01-01T08:00:00+00:00 INFO finstack.access [<request id>] GET /api/tasks 200 3.1ms`; a traceback is
    folded onto the same line."""

    def __init__(self):
        super().__init__(_TEXT_FORMAT)

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's method name
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def format(self, record):
        record.request_id = getattr(record, "request_id", None) or "-"
        return _one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, any `extra=` fields, exception."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def formatter(log_format):
    return JsonFormatter() if log_format == "json" else TextFormatter()


def make_handler(log_format="text"):
    """The stderr handler FinStack installs (marked, so configuring again replaces it instead of adding one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    handler.finstack = True
    return handler


def configure_logging(level="info", log_format="text"):
    """Route every logger through one FinStack handler on the root logger; idempotent."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if getattr(handler, "finstack", False)]:
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level.upper())
    # Our access log replaces the development server's own request lines; alembic announces its plugins on import.
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.setLevel(logging.WARNING)
    if not any(isinstance(existing, WebSocketTailFilter) for existing in werkzeug_log.filters):
        werkzeug_log.addFilter(WebSocketTailFilter())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class WebSocketTailFilter(logging.Filter):
    """The development server hands a closed WebSocket's connection back to its HTTP parser, which then reads the
    client's last frames (a close frame, 0x88) as a request line and logs `code 400, message Bad request syntax
    ('\\x88...')`. Those lines say nothing about a real request and are dropped."""

    _TAIL = re.compile(r"code 400, message Bad (request syntax|HTTP/0\.9 request type|request version) \(['\"]\\x8")

    def filter(self, record):
        return not self._TAIL.search(record.getMessage())


class QuietWsgiErrors:
    """`wsgi.errors` for the app: lines written there become log records instead of raw, unterminated text.

    eventlet's WebSocket writes `socket shutdown error: [Errno 9] Bad file descriptor` there whenever a client
    closes first, which is a normal disconnect; that line is demoted to debug."""

    _log = logging.getLogger("finstack.wsgi")

    def write(self, text):
        text = text.strip()
        if not text:
            return
        level = logging.DEBUG if "socket shutdown error" in text else logging.WARNING
        self._log.log(level, "%s", text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass


def init_app(app):
    """Request ids, access logs and log routing for `app`."""
    from flask import g, request

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    def _start_request():
        g.request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()

    # First of all before_request functions, so a request another one refuses still has its id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)

    @app.after_request
    def _finish_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
            elapsed_ms = round((time.perf_counter() - g.request_started) * 1000, 1)
            access_log.info(
                "%s %s %s %sms",
                request.method,
                request.path,
                response.status_code,
                elapsed_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": elapsed_ms,
                    "remote_addr": request.remote_addr,
                },
            )
        return response

    inner = app.wsgi_app

    def wsgi_app(environ, start_response):
        environ["wsgi.errors"] = QuietWsgiErrors()
        return inner(environ, start_response)

    app.wsgi_app = wsgi_app
