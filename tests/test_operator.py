"""What an operator meets: `flask` without side effects, `flask setup`, the health check telling the truth about the
schema, one-line configuration errors from every entry point, and the logs of a real server.

Entry points run as real subprocesses (`python app.py`, `flask …`, gunicorn) from the checkout.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask_jwt_extended import create_access_token
from flask_migrate import downgrade, upgrade

from finstack import MIGRATIONS_DIRECTORY, create_app
from finstack.config import SETTINGS, ConfigError, normalise_database_url
from finstack.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
START_TIMEOUT = 60
SECRETS = {
    "SECRET_KEY": "operator-test-secret-key-0123456789abcdef0123456789",
    "JWT_SECRET_KEY": "operator-test-jwt-secret-key-0123456789abcdef012345",
}
CONFIG_ERROR = "Configuration error: MAX_UPLOAD_MB must be a whole number of megabytes, got 'ten'"


def environment(tmp_path, **extra):
    """The test process's environment without any FinStack setting, plus strong secrets (so nothing is written to
    the checkout's instance/secrets.json) and the given settings."""
    read = {setting.env for setting in SETTINGS} | {"FLASK_APP", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"}
    env = {key: value for key, value in os.environ.items() if key not in read}
    env.update(SECRETS, UPLOAD_FOLDER=str(tmp_path / "uploads"), FLASK_APP="app.py", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run(args, env, cwd=ROOT):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def sqlite_url(tmp_path, name="fresh.db"):
    return f"sqlite:///{tmp_path / name}"


def table_names(url):
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def migration_head():
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIRECTORY)
    script = ScriptDirectory.from_config(config)
    head = script.get_revision(script.get_current_head())
    return head.revision, head.down_revision


# --- `flask` has no side effects; `flask setup` does the setting up ------------------------------------------------


@pytest.mark.parametrize(
    ("command", "finstack_env"),
    [(["--help"], "development"), (["routes"], "production"), (["db", "--help"], "development")],
)
def test_flask_commands_do_not_migrate_create_the_admin_or_print_secrets(tmp_path, finstack_env, command):
    database = tmp_path / "fresh.db"
    env = environment(tmp_path, FINSTACK_ENV=finstack_env, DATABASE_URL=f"sqlite:///{database}")
    result = run([PYTHON, "-m", "flask", *command], env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert not database.exists() or table_names(f"sqlite:///{database}") == []
    assert "Created the admin" not in output and "admin123" not in output
    assert "Running upgrade" not in output


def test_flask_setup_creates_the_admin_once_and_prints_its_password_once(tmp_path):
    url = sqlite_url(tmp_path)
    env = environment(tmp_path, FINSTACK_ENV="production", DATABASE_URL=url)

    first = run([PYTHON, "-m", "flask", "setup"], env)
    assert first.returncode == 0, first.stderr
    password = re.search(r"with the password: (\S+)", first.stdout).group(1)
    assert password != "admin123" and len(password) >= 16
    assert (first.stdout + first.stderr).count(password) == 1  # on stdout, once; never in a log line

    second = run([PYTHON, "-m", "flask", "setup"], env)
    assert second.returncode == 0, second.stderr
    assert "admin exists" in second.stdout
    assert password not in second.stdout + second.stderr

    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        client = app.test_client()
        response = client.post("/api/auth/login", json={"username": "admin", "password": password})
        assert response.status_code == 200, response.json
        assert response.json["user"]["role"] == "admin"
        assert client.get("/api/health").json["status"] == "healthy"
        db.engine.dispose()


def test_two_setups_at_once_create_one_admin(app, database_url, tmp_path):
    """Two containers starting together (on PostgreSQL they take turns on an advisory lock)."""
    env = environment(tmp_path, FINSTACK_ENV="production", DATABASE_URL=database_url)
    processes = [
        subprocess.Popen([PYTHON, "-m", "flask", "setup"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=180)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sum("with the password:" in output for output in outputs) == 1, outputs
    db.session.expire_all()
    assert db.session.scalar(sa.text("SELECT count(*) FROM users")) == 1


def test_flask_setup_says_why_when_the_database_does_not_answer(tmp_path):
    env = environment(tmp_path, FINSTACK_ENV="production", DATABASE_URL="postgresql://nobody@127.0.0.1:9/finstack")
    result = run([PYTHON, "-m", "flask", "setup"], env)
    assert result.returncode == 1
    assert "Cannot set up the database" in result.stderr
    assert "Traceback" not in result.stderr


# --- health and the schema ------------------------------------------------------------------------------------------


def test_health_reports_the_migration_at_head(client):
    head, _ = migration_head()
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "healthy" and response.json["database"] == "ok"
    assert response.json["migrations"] == {"current": head, "head": head}


def test_health_is_unhealthy_while_the_schema_is_one_migration_behind(tmp_path):
    head, previous = migration_head()
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": sqlite_url(tmp_path)})
    client = app.test_client()
    with app.app_context():
        never_migrated = client.get("/api/health")
        assert never_migrated.status_code == 503
        assert never_migrated.json["migrations"] == {"current": None, "head": head}

        upgrade()
        downgrade(revision="-1")
        behind = client.get("/api/health")
        assert behind.status_code == 503
        assert behind.json["status"] == "unhealthy" and behind.json["database"] == "outdated"
        assert behind.json["migrations"] == {"current": previous, "head": head}

        upgrade()
        assert client.get("/api/health").status_code == 200
        db.engine.dispose()


# --- configuration errors: one line, exit status 2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [PYTHON, "app.py"],
        [PYTHON, "-m", "flask", "routes"],
        [PYTHON, "-m", "flask", "setup"],
        [GUNICORN, "-c", "gunicorn.conf.py", "-k", "eventlet", "-w", "1", "app:app"],
    ],
    ids=["python app.py", "flask routes", "flask setup", "gunicorn"],
)
def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path, command):
    env = environment(tmp_path, MAX_UPLOAD_MB="ten", DATABASE_URL=sqlite_url(tmp_path), PORT="1")
    result = run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == CONFIG_ERROR
    assert not (tmp_path / "fresh.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "http", "PORT must be a TCP port number (1-65535), got 'http'"),
        ("PORT", "70000", "PORT must be a TCP port number (1-65535), got '70000'"),
        ("REGISTRATION_OPEN", "maybe", "REGISTRATION_OPEN must be true or false, got 'maybe'"),
        ("JWT_ACCESS_TOKEN_MINUTES", "1.5", "JWT_ACCESS_TOKEN_MINUTES must be a whole number of minutes"),
        ("SOCKET_RECHECK_SECONDS", "0", "SOCKET_RECHECK_SECONDS must be a number of seconds above 0"),
        ("MAIL_RETRY_DELAY", "nan", "MAIL_RETRY_DELAY must be a number of seconds (0 or more)"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a Redis URL"),
        ("DATABASE_URL", "finstack.db", "DATABASE_URL must be a database URL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json, got 'xml'"),
        ("LOGIN_RATE_LIMIT", "lots", "LOGIN_RATE_LIMIT must be a rate such as 5/minute"),
        ("PROXY_FIX_X_FOR", "-1", "PROXY_FIX_X_FOR must be a whole number of trusted proxies"),
        ("FINSTACK_ENV", "staging", "FINSTACK_ENV must be one of development, production, testing, got 'staging'"),
    ],
)
def test_each_setting_names_the_variable_and_the_expected_form(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        create_app({"FINSTACK_ENV": "testing"} if variable != "FINSTACK_ENV" else None)
    assert str(raised.value).startswith(f"Configuration error: {expected}")
    assert "\n" not in str(raised.value)


def test_settings_parse_and_keep_their_config_keys(monkeypatch, database_url):
    for variable, value in {
        "LOGIN_RATE_LIMIT": "10 per minute;100/hour",
        "RATELIMIT_ENABLED": "no",
        "PROXY_FIX_X_FOR": "1",
        "REQUEST_READ_TIMEOUT": "12",
        "MAIL_PORT": "2525",
        "JWT_REFRESH_TOKEN_DAYS": "7",
        "PORT": "",  # blank, as compose files and .env templates leave it: the default
    }.items():
        monkeypatch.setenv(variable, value)
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["LOGIN_RATE_LIMIT"] == "10 per minute;100/hour"
    assert app.config["RATELIMIT_ENABLED"] is False
    assert (app.config["PROXY_FIX_X_FOR"], app.config["REQUEST_READ_TIMEOUT"]) == (1, 12)
    assert app.config["MAIL_PORT"] == 2525 and app.config["PORT"] == 5000
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"].days == 7


def test_rate_limit_defaults(monkeypatch, database_url):
    for variable in ("RATELIMIT_ENABLED", "LOGIN_RATE_LIMIT", "PROXY_FIX_X_FOR", "REQUEST_READ_TIMEOUT"):
        monkeypatch.delenv(variable, raising=False)
    testing = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url})
    assert testing.config["RATELIMIT_ENABLED"] is False
    development = create_app({"FINSTACK_ENV": "development", "SQLALCHEMY_DATABASE_URI": database_url, **SECRETS})
    assert development.config["RATELIMIT_ENABLED"] is True
    assert development.config["LOGIN_RATE_LIMIT"] == "5/minute"
    assert (development.config["PROXY_FIX_X_FOR"], development.config["REQUEST_READ_TIMEOUT"]) == (0, 30)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///instance/finstack.db", "sqlite:////srv/app/instance/finstack.db"),
        ("sqlite:///data.db?timeout=5", "sqlite:////srv/app/data.db?timeout=5"),
        ("sqlite:////var/lib/finstack.db", "sqlite:////var/lib/finstack.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_database_url_normalisation(url, expected):
    assert normalise_database_url(url, base="/srv/app") == expected


def test_relative_sqlite_url_resolves_against_the_working_directory(tmp_path):
    """The README's example, run from another directory: the file lands there, not in the checkout's instance/."""
    env = environment(tmp_path, FINSTACK_ENV="development", DATABASE_URL="sqlite:///instance/readme-example.db")
    env["FLASK_APP"] = str(ROOT / "app.py")
    result = run([PYTHON, "-m", "flask", "setup"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "users" in table_names(f"sqlite:///{tmp_path / 'instance' / 'readme-example.db'}")
    assert not (ROOT / "instance" / "readme-example.db").exists()


# --- gunicorn: one worker per process -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", [["-w", "2"], "GUNICORN_CMD_ARGS"])
def test_gunicorn_refuses_more_than_one_worker(tmp_path, how):
    port = free_port()
    env = environment(tmp_path, DATABASE_URL=sqlite_url(tmp_path))
    args = [GUNICORN, "-c", "gunicorn.conf.py", "-k", "eventlet", "-b", f"127.0.0.1:{port}"]
    if how == "GUNICORN_CMD_ARGS":
        env["GUNICORN_CMD_ARGS"] = "--workers 3"
    else:
        args += how
    result = run([*args, "app:app"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "gunicorn must run exactly 1 worker per process" in result.stderr
    assert "sticky-session proxy with REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


# --- logs of real servers -----------------------------------------------------------------------------------------


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, args, env, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                return requests.get(f"{self.url}/api/health", timeout=2)
            except requests.RequestException:
                time.sleep(0.2)
        pytest.fail(f"the server did not answer within {START_TIMEOUT} s:\n{self.output()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(args, env):
        server = Server(args, env, tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


BOOM_APP = '''
"""app:app plus a route that fails, for the 500 log test."""
from app import app


@app.get("/_test/boom")
def boom():
    raise ZeroDivisionError("the divisor was zero")
'''


def connect_and_disconnect(url, token, connect_socket):
    for transports in (["websocket"], ["polling", "websocket"]):
        client = connect_socket(url, token=token, transports=transports)
        client.disconnect()
        assert client.wait_disconnected()


NOISE = ("Deprecat", "DEPRECATED", "socket shutdown error", "Bad request syntax", "Traceback", "Bad file descriptor")


def test_gunicorn_json_logs_request_ids_and_a_quiet_disconnect(
    start_server, tmp_path, database_url, member, connect_socket
):
    (tmp_path / "boom_app.py").write_text(BOOM_APP)
    env = environment(tmp_path, FINSTACK_ENV="testing", DATABASE_URL=database_url, LOG_FORMAT="json")
    for secret in SECRETS:  # the testing secrets, so the server accepts the tokens this test signs
        del env[secret]
    server = start_server(
        [
            GUNICORN,
            "-c",
            "gunicorn.conf.py",
            "-k",
            "eventlet",
            "-w",
            "1",
            "--pythonpath",
            str(tmp_path),
            "boom_app:app",
        ],
        env,
    )
    assert server.wait_up().status_code == 200

    echoed = requests.get(f"{server.url}/api/health", headers={"X-Request-ID": "lb-7f3a.42"}, timeout=10)
    assert echoed.headers["X-Request-ID"] == "lb-7f3a.42"
    replaced = requests.get(f"{server.url}/api/health", headers={"X-Request-ID": "no spaces <b>" * 20}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])

    failed = requests.get(f"{server.url}/_test/boom", headers={"X-Request-ID": "boom-1"}, timeout=10)
    assert failed.status_code == 500
    assert failed.json() == {
        "error": "Internal server error",
        "code": "internal_error",
        "details": {"request_id": "boom-1"},
    }
    assert "divisor" not in failed.text

    connect_and_disconnect(server.url, create_access_token(identity=str(member.id)), connect_socket)
    time.sleep(0.5)  # let the worker write what the disconnects make it write
    server.stop()

    lines = server.output().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = "\n".join(record["message"] for record in records)
    for noise in NOISE:
        assert noise not in messages
    assert [record["request_id"] for record in records if "exception" in record] == ["boom-1"]
    access = [record for record in records if record["logger"] == "finstack.access"]
    assert {"method": "GET", "path": "/api/health", "status": 200, "request_id": "lb-7f3a.42"}.items() <= next(
        record for record in access if record["request_id"] == "lb-7f3a.42"
    ).items()
    error = next(record for record in records if record["level"] == "ERROR")
    assert error["request_id"] == "boom-1" and "ZeroDivisionError" in error["exception"]
    assert any(record["request_id"] == "boom-1" and record["status"] == 500 for record in access)


TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[\S+\] "
)


def test_python_app_py_quick_start_and_readable_logs(start_server, tmp_path, connect_socket):
    """The README's first command on a fresh database: it migrates, makes admin/admin123, serves, logs one line
    per record (text), and a client connecting and disconnecting leaves no noise."""
    env = environment(tmp_path, FINSTACK_ENV="development", DATABASE_URL=sqlite_url(tmp_path))
    server = start_server([PYTHON, "app.py"], env)
    assert server.wait_up().status_code == 200
    login = requests.post(
        f"{server.url}/api/auth/login", json={"username": "admin", "password": "admin123"}, timeout=10
    )
    assert login.status_code == 200, login.text
    connect_and_disconnect(server.url, login.json()["access_token"], connect_socket)
    time.sleep(0.5)
    server.stop()

    output = server.output()
    for noise in NOISE:
        assert noise not in output
    assert "Created the admin 'admin' with the password: admin123" in output
    login_line = next(line for line in output.splitlines() if "POST /api/auth/login 200" in line)
    assert TEXT_LINE.match(login_line)
    assert f"[{login.headers['X-Request-ID']}]" in login_line
    log_lines = [line for line in output.splitlines() if line[:4].isdigit()]
    assert log_lines and all(TEXT_LINE.match(line) for line in log_lines)
