"""The real production command, `gunicorn -k eventlet -w 1 -c gunicorn.conf.py app:app`, serves the API over HTTP.

Each test starts gunicorn as a subprocess on a free port and talks to it with urllib only.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="set TEST_DATABASE_URL to run against PostgreSQL")

START_TIMEOUT = 30
STRONG_SECRETS = {
    "SECRET_KEY": "gunicorn-test-secret-key-0123456789abcdef0123456789",
    "JWT_SECRET_KEY": "gunicorn-test-jwt-secret-key-0123456789abcdef012345",
}
# Settings from the developer's shell that would change what these tests see.
SCRUBBED = (
    "FINSTACK_ADMIN_PASSWORD",
    "SOCKETIO_ASYNC_MODE",
    "BIND",
    "HOST",
    "PORT",
    "GUNICORN_CMD_ARGS",
    "MAIL_SERVER",
)
# Never send 127.0.0.1 through an http_proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def migrated_sqlite(path):
    """A SQLite URL for `path`, set up as `flask setup` does (latest revision, admin/admin123): gunicorn never
    migrates, and answers 503 on an outdated schema."""
    from finstack import create_app
    from finstack.bootstrap import setup_database
    from finstack.extensions import db

    url = f"sqlite:///{path}"
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        setup_database(app)
        db.engine.dispose()
    return url


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url, method="GET", body=None, token=None, timeout=10):
    """One HTTP request; returns (status, decoded JSON body)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Gunicorn:
    """`gunicorn -k eventlet -w 1 -c gunicorn.conf.py -b 127.0.0.1:<port> <app_spec>` in a subprocess."""

    def __init__(self, tmp_path, env, app_spec="app:app", extra_args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"gunicorn-{self.port}.log"
        full_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
        full_env.update({"UPLOAD_FOLDER": str(tmp_path / "uploads"), "PYTHONUNBUFFERED": "1"}, **env)
        command = [str(GUNICORN), "-k", "eventlet", "-w", "1", "-c", "gunicorn.conf.py"]
        command += ["-b", f"127.0.0.1:{self.port}", *extra_args, app_spec]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self):
        """Poll /api/health until it answers 200; returns its JSON."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, body = call(f"{self.url}/api/health", timeout=2)
            except (OSError, ValueError):
                status = None
            if status == 200:
                return body
            time.sleep(0.2)
        pytest.fail(f"gunicorn did not serve /api/health within {START_TIMEOUT}s:\n{self.log()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_gunicorn(tmp_path):
    servers = []

    def start(env, **kwargs):
        server = Gunicorn(tmp_path, env, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def assert_serves_api(server, username, password):
    health = server.wait_healthy()
    assert health["status"] == "healthy" and health["database"] == "ok"
    assert isinstance(health["version"], str) and health["version"]
    # gunicorn.conf.py's hooks ran in the worker: psycopg2 waits through eventlet.
    assert "psycopg2 wait callback: psycogreen.eventlet" in server.log()

    status, login = call(f"{server.url}/api/auth/login", "POST", {"username": username, "password": password})
    assert status == 200, login
    assert login["token_type"] == "bearer" and login["user"]["username"] == username

    status, tasks = call(f"{server.url}/api/tasks", token=login["access_token"])
    assert status == 200, tasks
    assert tasks["items"] == []
    assert tasks["pagination"] == {
        "page": 1, "per_page": 20, "total": 0, "pages": 0, "total_exact": True, "next_cursor": None
    }

    status, error = call(f"{server.url}/api/tasks")
    assert status == 401 and "error" in error


def test_gunicorn_eventlet_serves_sqlite(start_gunicorn, tmp_path):
    """Development on a fresh SQLite file: importing app:app changes nothing, so health says the schema is not
    migrated (503) until `flask setup` migrates it and creates admin/admin123."""
    env = {
        "FINSTACK_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.db'}",
        **STRONG_SECRETS,  # so nothing is written to the checkout's instance/secrets.json
    }
    server = start_gunicorn(env)
    deadline = time.monotonic() + 2 * START_TIMEOUT  # a loaded machine boots the worker slowly
    while True:
        try:
            status, health = call(f"{server.url}/api/health", timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and server.process.poll() is None, server.log()
            time.sleep(0.2)
    assert status == 503, health
    assert health["status"] == "unhealthy" and health["migrations"]["current"] is None

    full_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    setup = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "setup"],
        cwd=ROOT,
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stderr
    assert_serves_api(server, "admin", "admin123")


@needs_postgres
def test_gunicorn_eventlet_serves_postgres(start_gunicorn, database_url, make_user):
    """Production on the migrated test schema; production never migrates and keeps existing users."""
    make_user(role="admin", username="gunicorn-admin", password="gunicorn-admin-password")
    server = start_gunicorn({"FINSTACK_ENV": "production", "DATABASE_URL": database_url, **STRONG_SECRETS})
    assert_serves_api(server, "gunicorn-admin", "gunicorn-admin-password")


SLEEPY_APP = '''
"""app:app plus one route holding a PostgreSQL query open, for the cooperative-driver test."""
import sqlalchemy as sa

from app import app
from finstack.extensions import db


@app.get("/_test/pg-sleep/<tag>")
def pg_sleep(tag):
    db.session.execute(sa.text(f"SELECT pg_sleep(60) /* {tag} */"))
    return {"slept": True}
'''


@needs_postgres
def test_postgres_query_does_not_block_the_worker(start_gunicorn, database_url, app, tmp_path):
    """While one request waits on PostgreSQL, the single eventlet worker still answers others (psycogreen).

    No timing is measured: /api/health must answer while the other request's query is still running. With a
    blocking driver the worker's only OS thread would sit in libpq until the 60 s sleep ended.
    """
    (tmp_path / "sleepy_app.py").write_text(SLEEPY_APP)
    server = start_gunicorn(
        {"FINSTACK_ENV": "production", "DATABASE_URL": database_url, **STRONG_SECRETS},
        app_spec="sleepy_app:app",
        extra_args=("--pythonpath", str(tmp_path)),
    )
    server.wait_healthy()

    tag = f"finstack-gunicorn-test-{uuid.uuid4().hex}"
    sleeper = threading.Thread(target=lambda: call(f"{server.url}/_test/pg-sleep/{tag}", timeout=90), daemon=True)
    sleeper.start()
    # Autocommit: PostgreSQL keeps one snapshot of pg_stat_activity per transaction, so a poll inside one transaction
    # would never see a query that started after its first look.
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    find_sleep = sa.text(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE :pattern"
    )
    try:
        with engine.connect() as connection:
            deadline = time.monotonic() + 2 * START_TIMEOUT  # a loaded machine (the PostgreSQL CI pass) is slow
            while not connection.scalar(find_sleep, {"pattern": f"%{tag}%"}):
                assert time.monotonic() < deadline, f"the pg_sleep query never started:\n{server.log()}"
                time.sleep(0.1)

            try:
                status, health = call(f"{server.url}/api/health", timeout=20)
            except OSError as error:  # TimeoutError included
                pytest.fail(f"/api/health got no answer while a PostgreSQL query ran: the worker is blocked ({error})")
            assert status == 200 and health["database"] == "ok"
            sleeping = connection.scalar(find_sleep, {"pattern": f"%{tag}%"})
            assert sleeping, "health answered only after the other request's query had finished"
    finally:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND query LIKE :pattern"
                ),
                {"pattern": f"%{tag}%"},
            )
        engine.dispose()
        sleeper.join(timeout=30)


# -- slow clients -----------------------------------------------------------------------------------------------------


def closed_after(sock, since, limit):
    """Seconds from `since` until the server closed `sock` (recv returns b"" or the connection resets); fails when
    it is still open `limit` seconds later."""
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass  # a response sent before closing (there should be none) is read and ignored
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {limit}s")
    return time.monotonic() - since


def test_slow_clients_are_disconnected_while_others_are_served(start_gunicorn, tmp_path):
    """One client stops halfway through its headers, another halfway through its body: the server closes both
    within the configured timeouts (REQUEST_HEADER_TIMEOUT, REQUEST_READ_TIMEOUT), serving others meanwhile."""
    server = start_gunicorn(
        {
            "DATABASE_URL": migrated_sqlite(tmp_path / "slow.db"),
            "REQUEST_HEADER_TIMEOUT": "2",
            "REQUEST_READ_TIMEOUT": "2",
        }
    )
    server.wait_healthy()
    sent = time.monotonic()
    half_headers = socket.create_connection(("127.0.0.1", server.port))
    half_headers.sendall(b"GET /api/health HTTP/1.1\r\nHost: finstack\r\nX-Slow: ")
    half_body = socket.create_connection(("127.0.0.1", server.port))
    half_body.sendall(
        b"POST /api/auth/login HTTP/1.1\r\nHost: finstack\r\nContent-Type: application/json\r\n"
        b'Content-Length: 200\r\n\r\n{"username": "admin", '
    )
    try:
        status, health = call(f"{server.url}/api/health", timeout=5)  # served while both are held
        assert status == 200 and health["status"] == "healthy"
        header_seconds = closed_after(half_headers, sent, 15)
        body_seconds = closed_after(half_body, sent, 15)
    finally:
        half_headers.close()
        half_body.close()
    print(f"\nhalf-sent headers closed after {header_seconds:.1f}s, half-sent body after {body_seconds:.1f}s")
    status, health = call(f"{server.url}/api/health", timeout=5)
    assert status == 200
    assert "Traceback" not in server.log()


def test_a_websocket_is_not_cut_by_the_read_timeout(start_gunicorn, tmp_path, connect_socket):
    """A WebSocket idle for longer than REQUEST_READ_TIMEOUT stays connected and still receives events."""
    server = start_gunicorn({"DATABASE_URL": migrated_sqlite(tmp_path / "ws.db"), "REQUEST_READ_TIMEOUT": "1"})
    server.wait_healthy()
    status, login = call(f"{server.url}/api/auth/login", "POST", {"username": "admin", "password": "admin123"})
    assert status == 200, login
    sock = connect_socket(server.url, token=login["access_token"])
    time.sleep(3)  # three read timeouts of silence
    assert sock.connected
    status, task = call(
        f"{server.url}/api/tasks",
        "POST",
        {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00"},
        token=login["access_token"],
    )
    assert status == 201, task
    assert sock.call("join_task", {"task_id": task["id"]}, timeout=5) == {"ok": True}
