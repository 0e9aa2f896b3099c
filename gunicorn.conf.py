"""gunicorn settings for the production server: `gunicorn -c gunicorn.conf.py -k eventlet -w 1 app:app`.

Why eventlet, and why this gunicorn: Flask-SocketIO needs a long-lived-connection server for WebSockets, and the
design names gunicorn + eventlet. gunicorn 26 removed its eventlet worker (eventlet itself is bugfix-only), so
requirements.txt pins gunicorn 25.3.0, the newest release that still ships it. When eventlet goes, switch to
`-k gevent` or `-k gthread` (Flask-SocketIO supports both); nothing in finstack/ needs to change, because every
eventlet specific lives in this file.

Why one worker: a Socket.IO client's long-polling requests must all reach the process that holds its session.
Several workers in one gunicorn cannot guarantee that, so scale out with more gunicorn processes (or containers)
behind a load balancer with sticky sessions, and set REDIS_URL so an emit in one process reaches every socket.
"""

import contextlib
import importlib.util
import logging
import os
import socket
import sys
import warnings
from pathlib import Path

from dotenv import load_dotenv
from werkzeug.exceptions import ClientDisconnected

_HERE = Path(__file__).resolve().parent


def _load_by_path(name, relative):
    """Load one standard-library-only FinStack module without importing the `finstack` package (and Flask) into
    the master process: the eventlet worker must patch the standard library before those are imported."""
    spec = importlib.util.spec_from_file_location(name, _HERE / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_config = _load_by_path("_finstack_config", "finstack/config.py")
_logs = _load_by_path("_finstack_logs", "finstack/core/logs.py")

# Every setting is validated before gunicorn binds or forks: a bad one is one line on stderr and exit status 2.
load_dotenv(_HERE / ".env")
load_dotenv()
try:
    _settings = {setting.config_key: setting.default for setting in _config.SETTINGS}
    _settings |= _config.validate_environment(os.environ)
except _config.ConfigError as error:
    _config.exit_on_config_error(error)

# Listen where HOST/PORT say, as `python app.py` does: 127.0.0.1:5000 unless told otherwise, so a bare run on a
# workstation is not exposed to the network. The Docker image sets HOST=0.0.0.0. BIND (e.g. "unix:/run/finstack.sock"
# or "0.0.0.0:8000") wins over both; `-b` on the command line wins over everything.
bind = _settings["BIND"] or f"{_settings['HOST']}:{_settings['PORT']}"

worker_class = "eventlet"
workers = 1  # see the docstring: one worker per Socket.IO process
worker_connections = _settings["WORKER_CONNECTIONS"]  # concurrent greenlets per worker
timeout = _settings["GUNICORN_TIMEOUT"]
graceful_timeout = 20
# Slow clients cannot hold a connection (and a greenlet) for ever:
# - headers: the eventlet worker reads each request's header block under a timeout of `keepalive` seconds, counted
#   from the connection (or the previous response); a client that has not sent them all by then is disconnected;
# - body: once the headers are in, every read of the body may wait at most REQUEST_READ_TIMEOUT seconds for data
#   (like nginx's client_body_timeout); a client that stalls longer is disconnected. WebSocket connections are
#   long-lived by design and exempt: Socket.IO's own ping/pong (25 s / 20 s) detects dead ones.
keepalive = _settings["REQUEST_HEADER_TIMEOUT"]
request_read_timeout = float(_settings["REQUEST_READ_TIMEOUT"])

# The app must be imported in the worker, after fork and after the hook below, never in the master: the database pool
# must not be shared across a fork, and the app reads SOCKETIO_ASYNC_MODE when it is imported.
preload_app = False

# gunicorn 25's control socket sits at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl), so two servers of one
# user (tests, benchmarks, containers sharing a home) would fight over it; FinStack does not use `gunicornc`.
control_socket_disable = True

# --- logging: gunicorn's own lines in FinStack's one-line format (JSON with LOG_FORMAT=json) ---------------------
loglevel = _settings["LOG_LEVEL"]
errorlog = "-"
# FinStack writes one access line per request itself (finstack.access, with the request id). Setting ACCESS_LOG
# (e.g. ACCESS_LOG=-) adds gunicorn's own access lines, Socket.IO transport requests included, in the same format.
accesslog = _settings["ACCESS_LOG"]


class _KnownDeprecations(logging.Filter):
    """gunicorn warns at every worker boot that its eventlet worker is deprecated; the pin and the way out are
    documented above and in the README, so the warning is noise in an operator's log."""

    def filter(self, record):
        return "eventlet worker is DEPRECATED" not in record.getMessage()


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"deprecations": {"()": _KnownDeprecations}},
    "handlers": {
        "finstack": {"()": _logs.make_handler, "log_format": _settings["LOG_FORMAT"], "filters": ["deprecations"]}
    },
    "root": {"level": loglevel.upper(), "handlers": ["finstack"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["finstack"], "propagate": False},
        "gunicorn.access": {"level": "INFO" if accesslog else "CRITICAL", "handlers": ["finstack"], "propagate": False},
        "alembic.runtime.plugins": {"level": "WARNING"},  # announces its plugins at import
    },
}
# eventlet announces its own deprecation with a warning when the worker class is imported; same reason as above.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


# --- one worker per process ---------------------------------------------------------------------------------------
def on_starting(server):
    """Refuse `-w 2` (or `--workers 2` in GUNICORN_CMD_ARGS) before anything binds: see the module docstring."""
    if server.cfg.workers != 1:
        print(
            f"Configuration error: gunicorn must run exactly 1 worker per process, got {server.cfg.workers}."
            " Socket.IO keeps each session in the process that accepted it and gunicorn cannot send a client back"
            " to the same worker, so sessions would break at random. Run more gunicorn processes behind a"
            " sticky-session proxy with REDIS_URL set instead (see deploy/ and the README).",
            file=sys.stderr,
        )
        raise SystemExit(_config.CONFIG_ERROR_EXIT_STATUS)


def _is_eventlet(worker):
    module = sys.modules.get("gunicorn.workers.geventlet")  # imported (and eventlet patched) only for -k eventlet
    return module is not None and isinstance(worker, module.EventletWorker)


class _BodyReadTimeout:
    """Turns the socket timeout of a stalled body read into a disconnect instead of a server error."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if "wsgi.input" in environ and "gunicorn.socket" in environ:
            environ["wsgi.input"] = _TimedInput(environ["wsgi.input"], environ["gunicorn.socket"])
        return self.app(environ, start_response)


class _TimedInput:
    def __init__(self, stream, sock):
        self._stream = stream
        self._sock = sock

    def _guarded(self, read, *args):
        try:
            return read(*args)
        except TimeoutError as exc:  # socket.timeout: the client stalled for REQUEST_READ_TIMEOUT seconds
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            raise ClientDisconnected("The request body did not arrive in time") from exc

    def read(self, *args):
        return self._guarded(self._stream.read, *args)

    def readline(self, *args):
        return self._guarded(self._stream.readline, *args)

    def readlines(self, *args):
        return self._guarded(self._stream.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):  # anything else the server or a library asks of the stream
        return getattr(self._stream, name)


def _with_read_timeout(worker_class):
    """The eventlet worker, with REQUEST_READ_TIMEOUT on each body read (not on WebSocket connections)."""

    class ReadTimeoutWorker(worker_class):
        def handle_request(self, listener_name, req, sock, addr):
            upgrade = next((value for name, value in req.headers if name == "UPGRADE"), "")
            sock.settimeout(None if upgrade.lower() == "websocket" else request_read_timeout)
            return super().handle_request(listener_name, req, sock, addr)

    ReadTimeoutWorker.__name__ = ReadTimeoutWorker.__qualname__ = f"ReadTimeout{worker_class.__name__}"
    return ReadTimeoutWorker


def post_fork(server, worker):
    """Runs in each worker before the app is imported: tell the app which async mode to use, and make psycopg2
    cooperative, so one slow PostgreSQL query no longer stalls every other request and socket of the worker."""
    if _is_eventlet(worker):
        worker.__class__ = _with_read_timeout(type(worker))
        os.environ["SOCKETIO_ASYNC_MODE"] = "eventlet"
        # psycopg2 talks to the server in C, out of reach of eventlet's monkey patching; psycogreen installs a wait
        # callback that yields to the eventlet hub while a query is in flight.
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        server.log.info("Worker %s: eventlet async mode, psycopg2 made cooperative (psycogreen)", worker.pid)
    else:
        # gthread and sync workers are plain threads: Flask-SocketIO's threading mode.
        os.environ["SOCKETIO_ASYNC_MODE"] = "threading"
        server.log.info("Worker %s: %s, threading async mode", worker.pid, type(worker).__name__)


def post_worker_init(worker):
    """Runs once the app is loaded: remove what a crash left in UPLOAD_FOLDER, guard body reads with
    REQUEST_READ_TIMEOUT, and say what the worker really runs with, so a misconfiguration shows in the log."""
    from finstack.attachments.cleanup import clean_on_start

    if hasattr(worker.wsgi, "app_context"):  # not the error app gunicorn serves when the import failed
        clean_on_start(worker.wsgi)
    if _is_eventlet(worker):
        worker.wsgi = _BodyReadTimeout(worker.wsgi)
        import psycopg2.extensions

        callback = psycopg2.extensions.get_wait_callback()
        worker.log.info(
            "Worker %s ready; psycopg2 wait callback: %s", worker.pid, getattr(callback, "__module__", None)
        )
