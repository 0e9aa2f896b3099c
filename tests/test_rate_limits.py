"""Rate limits: login per address and per account, registration, password endpoints, the default,
the 429 shape, the audit entry, trusted proxies, Redis storage and the switch. The suite runs with limits off; these
tests turn them on through `app_config`."""

import os
import uuid

import jwt
import pytest
import sqlalchemy as sa

from finstack import create_app
from finstack.audit.models import AuditLog
from finstack.extensions import db
from tests.conftest import PASSWORD

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def limited(app, app_config):
    """`limited(**settings)`: a test client of an app with limits on, on the test's database."""
    apps = []

    def make(**settings):
        limited_app = create_app({**app_config, "RATELIMIT_ENABLED": True, **settings})
        apps.append(limited_app)
        return limited_app.test_client()

    yield make
    for limited_app in apps:
        with limited_app.app_context():
            db.engine.dispose()


def address():
    """A client address of its own per test, so counts never leak between tests (or runs, with Redis)."""
    return {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"}


def login(client, name, password="wrong-password", environ=None, headers=None):
    return client.post(
        "/api/auth/login",
        json={"username": name, "password": password},
        environ_base=environ or address(),
        headers=headers or {},
    )


def assert_rate_limited(response):
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == "rate_limited"
    assert body["error"] == "Too many requests"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3601
    assert body["details"]["retry_after"] == retry_after


def test_login_is_limited_to_five_a_minute_per_address(limited, member):
    client = limited()
    environ = address()
    statuses = [login(client, member.username, PASSWORD, environ).status_code for _ in range(5)]
    assert statuses == [200] * 5
    blocked = login(client, member.username, PASSWORD, environ)
    assert_rate_limited(blocked)
    # Another address is not affected.
    assert login(client, member.username, PASSWORD).status_code == 200


def test_login_rate_limit_is_configurable(limited, member):
    client = limited(LOGIN_RATE_LIMIT="2/minute")
    environ = address()
    assert [login(client, "someone", environ=environ).status_code for _ in range(2)] == [401, 401]
    assert_rate_limited(login(client, "someone", environ=environ))


def test_login_is_limited_per_account_name_across_addresses(limited, member):
    client = limited(LOGIN_ACCOUNT_RATE_LIMIT="3/hour")
    for name in (member.username, member.username.upper(), f" {member.username.title()} "):
        assert login(client, name).status_code == 401  # each from a new address
    assert_rate_limited(login(client, member.username, PASSWORD))
    assert_rate_limited(client.post("/api/auth/login", json={"email": member.username, "password": PASSWORD}))
    # Another account name is not affected.
    assert login(client, "somebody-else").status_code == 401


def test_login_per_account_limit_defaults_to_twenty_an_hour(limited, member):
    client = limited()
    statuses = [login(client, member.email).status_code for _ in range(20)]
    assert statuses == [401] * 20
    assert_rate_limited(login(client, member.email.upper(), PASSWORD))


def test_a_client_sent_x_forwarded_for_does_not_make_a_new_address(limited, member):
    client = limited()
    environ = address()
    for number in range(5):
        response = login(client, "x", environ=environ, headers={"X-Forwarded-For": f"203.0.113.{number}"})
        assert response.status_code == 401
    assert_rate_limited(login(client, "x", environ=environ, headers={"X-Forwarded-For": "203.0.113.99"}))


def test_with_a_declared_proxy_the_forwarded_address_counts(limited, member):
    client = limited(PROXY_FIX_X_FOR=1)
    proxy = address()
    for _ in range(5):
        assert login(client, "x", environ=proxy, headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401
    assert_rate_limited(login(client, "x", environ=proxy, headers={"X-Forwarded-For": "203.0.113.7"}))
    # Another client behind the same proxy has its own count.
    assert login(client, "x", environ=proxy, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 401


def test_registration_is_limited_per_address(limited):
    client = limited()
    environ = address()
    for number in range(10):
        response = client.post(
            "/api/auth/register",
            json={
                "username": f"newcomer{number}",
                "email": f"newcomer{number}@example.com",
                "password": PASSWORD,
                "full_name": "New Comer",
            },
            environ_base=environ,
        )
        assert response.status_code == 201
    assert_rate_limited(client.post("/api/auth/register", json={}, environ_base=environ))


def test_password_change_is_limited_per_address(limited, member, auth_headers):
    client = limited()
    environ = address()
    body = {"current_password": "not-the-password", "new_password": "another-long-password"}
    statuses = [
        client.put("/api/users/me/password", json=body, headers=auth_headers(member), environ_base=environ).status_code
        for _ in range(5)
    ]
    assert 429 not in statuses
    assert_rate_limited(
        client.put("/api/users/me/password", json=body, headers=auth_headers(member), environ_base=environ)
    )


def test_the_default_limit_counts_per_user_not_per_address(limited, member, manager, auth_headers):
    client = limited(DEFAULT_RATE_LIMIT="3/minute")
    environ = address()
    for _ in range(3):
        assert client.get("/api/users/me", headers=auth_headers(member), environ_base=environ).status_code == 200
    assert_rate_limited(client.get("/api/tasks", headers=auth_headers(member), environ_base=environ))
    # Another user from the same address has a count of their own.
    assert client.get("/api/users/me", headers=auth_headers(manager), environ_base=environ).status_code == 200


def test_the_limiter_and_the_endpoint_share_one_decode_of_the_token(limited, member, auth_headers, monkeypatch):
    client = limited()
    headers = auth_headers(member)
    decodes = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: decodes.append(args) or decode(*args, **kwargs))
    assert client.get("/api/users/me", headers=headers, environ_base=address()).status_code == 200
    assert len(decodes) == 1


def test_a_trip_is_audited_on_its_own(limited, member):
    client = limited(LOGIN_RATE_LIMIT="1/minute")
    environ = address()
    login(client, member.username, environ=environ)
    assert_rate_limited(login(client, member.username, environ=environ))
    db.session.rollback()
    entries = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.rate_limited")).all()
    assert len(entries) == 1
    assert entries[0].ip_address == environ["REMOTE_ADDR"]
    assert entries[0].changes["endpoint"] == "auth.login"
    assert entries[0].changes["limit"] == "1 per 1 minute"


def test_ratelimit_enabled_false_turns_every_limit_off(limited, member):
    client = limited(RATELIMIT_ENABLED=False, LOGIN_RATE_LIMIT="1/minute")
    environ = address()
    assert [login(client, "x", environ=environ).status_code for _ in range(4)] == [401] * 4


def test_ratelimit_enabled_comes_from_the_environment(monkeypatch, database_url, tmp_path):
    monkeypatch.delenv("FINSTACK_ENV", raising=False)
    for value, expected in ((None, True), ("false", False), ("true", True)):
        if value is None:
            monkeypatch.delenv("RATELIMIT_ENABLED", raising=False)
        else:
            monkeypatch.setenv("RATELIMIT_ENABLED", value)
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_FOLDER": str(tmp_path)})
        assert app.config["RATELIMIT_ENABLED"] is expected  # on by default, in development too


@pytest.fixture
def redis_available():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")


def test_with_redis_the_count_is_shared_by_every_process(redis_available, limited, member):
    """Two apps with their own storage connections stand for two server processes: the count lives in Redis."""
    environ = address()
    name = f"nobody-{uuid.uuid4().hex}"  # Redis keeps counts across runs: a per-account count of its own per run
    first = limited(REDIS_URL=REDIS_URL, LOGIN_RATE_LIMIT="3/minute")
    assert first.application.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    assert [login(first, name, environ=environ).status_code for _ in range(3)] == [401] * 3
    second = limited(REDIS_URL=REDIS_URL, LOGIN_RATE_LIMIT="3/minute")
    assert_rate_limited(login(second, name, environ=environ))


def test_requests_matching_no_route_are_not_counted(limited, member, auth_headers):
    client = limited(DEFAULT_RATE_LIMIT="2/minute")
    environ, headers = address(), auth_headers(member)
    for _ in range(3):
        assert client.get("/api/no-such-thing", headers=headers, environ_base=environ).status_code == 404
        assert client.delete("/api/health", headers=headers, environ_base=environ).status_code == 405
    for _ in range(2):
        assert client.get("/api/users/me", headers=headers, environ_base=environ).status_code == 200
    assert_rate_limited(client.get("/api/users/me", headers=headers, environ_base=environ))
