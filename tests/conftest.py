"""Fixtures: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set).

The schema is built once per session by running the Alembic migrations from empty, exactly as
`flask db upgrade` does; each test then starts from empty tables.
"""

import itertools
import os
import socket
import threading
import time
import uuid
from email import message_from_bytes
from types import SimpleNamespace

import pytest
import socketio
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_migrate import upgrade
from werkzeug.serving import make_server

from finstack import create_app
from finstack.core import events as core_events
from finstack.core.events import user_room
from finstack.extensions import db
from finstack.tasks.models import TaskCount
from finstack.users import service as users

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_report_header(config):
    return f"database: {POSTGRES_URL or 'SQLite (set TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not POSTGRES_URL:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'finstack-test.db'}"
        _migrate(url)
        yield url
        return
    # A schema of its own per test session, so concurrent runs against one database never collide.
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(POSTGRES_URL)
    with admin_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url = url.render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin_engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def _migrate(url):
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture
def app_config(database_url, tmp_path):
    """Overrides for the app under test; a test may change them before using `app`."""
    return {
        "FINSTACK_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def empty_tables():
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
    # Deleting the tasks queued their count deltas, applied at that COMMIT (PostgreSQL): the counts go after it.
    with db.engine.begin() as connection:
        connection.execute(TaskCount.__table__.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_sequence = itertools.count(1)

PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_user(app):
    """Create a user straight through the service; every keyword can be overridden."""

    def make(role="member", **fields):
        number = next(_sequence)
        values = {
            "username": f"user{number}",
            "email": f"user{number}@example.com",
            "password": PASSWORD,
            "full_name": f"User {number}",
            "role": role,
        }
        values.update(fields)
        return users.create_user(**values)

    return make


@pytest.fixture
def auth_headers(app):
    def headers(user, refresh=False):
        make_token = create_refresh_token if refresh else create_access_token
        return {"Authorization": f"Bearer {make_token(identity=str(user.id))}"}

    return headers


@pytest.fixture
def admin(make_user):
    return make_user(role="admin")


@pytest.fixture
def manager(make_user):
    return make_user(role="manager")


@pytest.fixture
def member(make_user):
    return make_user(role="member")


# --- Live server and Socket.IO clients (real time) -------------------------------------------------------------


class SocketClient(socketio.Client):
    """A python-socketio client that records every server event, to wait on them in tests."""

    def __init__(self, **kwargs):
        super().__init__(reconnection=False, **kwargs)
        self.received = []
        self.connect_errors = []
        self._arrived = threading.Condition()
        self.on("*", self._record)
        self.on("connect_error", self._record_connect_error)

    def _record(self, event, *args):
        with self._arrived:
            self.received.append((event, args[0] if len(args) == 1 else args))
            self._arrived.notify_all()

    def _record_connect_error(self, data=None):
        self.connect_errors.append(data)

    def events(self, name):
        with self._arrived:
            return [data for event, data in self.received if event == name]

    def wait_for(self, name, predicate=lambda data: True, timeout=5):
        """The first `name` event whose payload satisfies `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for event, data in self.received:
                    if event == name and predicate(data):
                        return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {name!r} event within {timeout} s; got {self.received!r}")
                self._arrived.wait(remaining)

    def wait_disconnected(self, timeout=5):
        deadline = time.monotonic() + timeout
        while self.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.connected


@pytest.fixture
def live_server(app):
    """The app under test on a free port: a real threaded WSGI server speaking HTTP, long-polling and WebSocket,
    sharing the test database (the same `app`, so the same SQLALCHEMY_DATABASE_URI)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", port=server.server_port, app=app)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def connect_socket():
    """`connect_socket(url, user)` → a connected SocketClient authenticated as `user` (or with `token=`); every
    client is disconnected at teardown. `last_seq=n` asks for the replay of the user's events after n.
    `connect=False` returns it unconnected; a refused connect raises
    socketio.exceptions.ConnectionError, with the server's reason in `client.connect_errors`."""
    clients = []

    def connect_client(
        url, user=None, *, token=None, transports=("websocket",), query_token=False, connect=True, last_seq=None
    ):
        if token is None and user is not None:
            token = create_access_token(identity=str(user.id))
        client = SocketClient()
        clients.append(client)
        if not connect:
            return client
        auth = {"token": token} if token is not None else None
        if last_seq is not None:
            auth = {**(auth or {}), "last_seq": last_seq}
        if query_token:
            url, auth = f"{url}?token={token}", None
        client.connect(url, auth=auth, transports=list(transports), wait_timeout=5)
        return client

    yield connect_client
    for client in clients:
        if client.connected:
            client.disconnect()
    for client in clients:
        client.wait_disconnected()


@pytest.fixture
def socket_client(live_server, connect_socket):
    """`socket_client(user)`: `connect_socket` against the live server."""

    def connect_client(user=None, **options):
        return connect_socket(live_server.url, user, **options)

    return connect_client


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_sink(app_config):
    """A real SMTP server (aiosmtpd) the app sends to; the messages it received are in `.messages`."""
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages = []
            self.port = port

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    port = free_port()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_RETRY_DELAY=0.05)
    yield sink
    controller.stop()


@pytest.fixture
def deliveries(monkeypatch):
    """What is pushed after commit, as (event, payload, rooms): the recipients' user rooms first (each copy goes with
    its `seq`, left out here), then the ad-hoc rooms (`conversation:`, `task:`, ...) for the other sockets in them.
    Recorded where finstack.core.events hands a committed event to the sockets (every process, through the
    registry)."""
    pushed = []

    def deliver(event, payload, seqs, rooms):
        pushed.append((event, payload, [user_room(user_id) for user_id, _ in seqs] + list(rooms)))

    monkeypatch.setattr(core_events, "deliver", deliver)
    return pushed
