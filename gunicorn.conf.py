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
import os
import socket
import sys

from werkzeug.exceptions import ClientDisconnected

# Listen where HOST/PORT say, as `python app.py` does: 127.0.0.1:5000 unless told otherwise, so a bare run on a
# workstation is not exposed to the network. The Docker image sets HOST=0.0.0.0. BIND (e.g. "unix:/run/finstack.sock"
# or "0.0.0.0:8000") wins over both; `-b` on the command line wins over everything.
bind = os.environ.get("BIND") or f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '5000'}"

worker_class = "eventlet"
workers = 1  # see the docstring: one worker per Socket.IO process
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))  # concurrent greenlets per worker
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
# Slow clients cannot hold a connection (and a greenlet) for ever:
# - headers: the eventlet worker reads each request's header block under a timeout of `keepalive` seconds, counted
#   from the connection (or the previous response); a client that has not sent them all by then is disconnected;
# - body: once the headers are in, every read of the body may wait at most REQUEST_READ_TIMEOUT seconds for data
#   (like nginx's client_body_timeout); a client that stalls longer is disconnected. WebSocket connections are
#   long-lived by design and exempt: Socket.IO's own ping/pong (25 s / 20 s) detects dead ones.
keepalive = int(os.environ.get("REQUEST_HEADER_TIMEOUT", "5"))
request_read_timeout = float(os.environ.get("REQUEST_READ_TIMEOUT", "30"))

# The app must be imported in the worker, after fork and after the hook below, never in the master: the database pool
# must not be shared across a fork, and the app reads SOCKETIO_ASYNC_MODE when it is imported.
preload_app = False

# gunicorn 25's control socket sits at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl), so two servers of one
# user (tests, benchmarks, containers sharing a home) would fight over it; FinStack does not use `gunicornc`.
control_socket_disable = True

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = os.environ.get("ACCESS_LOG") or None  # e.g. ACCESS_LOG=- to log every request to stdout


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
