"""`flask users …` and `flask seed demo`, the default admin, and configuration from the environment."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from flask_jwt_extended import decode_token

from finstack import create_app
from finstack.bootstrap import DEFAULT_ADMIN, ensure_default_admin, prepare_database
from finstack.extensions import db
from finstack.users.models import User

# Every variable the configuration reads that a test here depends on; each test starts without them.
ENVIRONMENT = (
    "FINSTACK_ENV",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "DATABASE_URL",
    "CORS_ORIGIN",
    "FINSTACK_ADMIN_PASSWORD",
    "REGISTRATION_OPEN",
    "JWT_ACCESS_TOKEN_MINUTES",
    "JWT_REFRESH_TOKEN_DAYS",
    "MAX_CONTENT_LENGTH",
)
STRONG_SECRET = "s" * 64
STRONG_JWT_SECRET = "j" * 64


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def find_user(username):
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def user_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def login(client, name, password=PASSWORD):
    return client.post("/api/auth/login", json={"username": name, "password": password})


def create_args(username="clara", email="clara@example.com", password="clara-password", *extra):
    args = ["users", "create", "--username", username, "--email", email, "--full-name", "Clara Cli"]
    if password is not None:
        args += ["--password", password]
    return args + list(extra)


# --- flask users create ---------------------------------------------------------------------------


def test_users_create_makes_a_member_by_default(runner, client):
    result = runner.invoke(args=create_args())
    assert result.exit_code == 0, result.output
    user = find_user("clara")
    assert str(user.id) in result.output
    assert (user.email, user.full_name, user.role, user.is_active) == ("clara@example.com", "Clara Cli", "member", True)
    assert login(client, "clara", "clara-password").status_code == 200


@pytest.mark.parametrize("role", ["admin", "manager", "member"])
def test_users_create_with_a_role(runner, role):
    result = runner.invoke(args=create_args("clara", "clara@example.com", "clara-password", "--role", role))
    assert result.exit_code == 0, result.output
    assert find_user("clara").role == role


def test_users_create_lower_cases_the_email_and_takes_a_department(runner, client):
    result = runner.invoke(
        args=create_args("clara", "Clara@Example.COM", "clara-password", "--department", "accounts"),
    )
    assert result.exit_code == 0, result.output
    user = find_user("clara")
    assert (user.email, user.department) == ("clara@example.com", "accounts")
    assert login(client, "CLARA@example.com", "clara-password").status_code == 200


def test_users_create_prompts_for_the_password_twice(runner, client):
    result = runner.invoke(args=create_args(password=None), input="prompted-pass\nprompted-pass\n")
    assert result.exit_code == 0, result.output
    assert "prompted-pass" not in result.output  # hidden input
    assert login(client, "clara", "prompted-pass").status_code == 200


def test_users_create_refuses_mismatched_prompted_passwords(runner):
    result = runner.invoke(args=create_args(password=None), input="first-pass1\nsecond-pass\n")
    assert result.exit_code != 0
    assert find_user("clara") is None


@pytest.mark.parametrize(
    ("username", "email"),
    [("clara", "other@example.com"), ("other", "clara@example.com"), ("other", "CLARA@EXAMPLE.COM")],
)
def test_users_create_duplicate_fails(runner, username, email):
    assert runner.invoke(args=create_args()).exit_code == 0
    result = runner.invoke(args=create_args(username, email, "another-pass"))
    assert result.exit_code != 0
    assert "already taken" in result.output
    assert user_count() == 1
    assert find_user("clara").check_password("clara-password")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (create_args("clara", "not-an-email"), "email"),
        (create_args("c", "clara@example.com"), "username"),
        (create_args("clara", "clara@example.com", "short"), "password"),
        (create_args("clara", "clara@example.com", "clara-password", "--role", "owner"), "owner"),
    ],
)
def test_users_create_invalid_input_fails(runner, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert user_count() == 0


# --- flask users list -----------------------------------------------------------------------------


def test_users_list_shows_everyone_with_role_and_state(runner, make_user):
    active = make_user(role="manager")
    inactive = make_user()
    assert runner.invoke(args=["users", "deactivate", inactive.username]).exit_code == 0

    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line.strip()}
    assert lines[active.username] == [active.username, active.email, "manager", "yes"]
    assert lines[inactive.username] == [inactive.username, inactive.email, "member", "no"]
    assert len(lines) == 2


def test_users_list_with_nobody(runner):
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1  # just the header


# --- flask users set-password ---------------------------------------------------------------------


def test_set_password_by_username(runner, client, member):
    result = runner.invoke(args=["users", "set-password", member.username, "--password", "reset-password"])
    assert result.exit_code == 0, result.output
    assert login(client, member.username, "reset-password").status_code == 200
    assert login(client, member.username).status_code == 401


def test_set_password_by_email_in_any_case_with_prompt(runner, client, member):
    result = runner.invoke(
        args=["users", "set-password", member.email.upper()],
        input="prompted-reset\nprompted-reset\n",
    )
    assert result.exit_code == 0, result.output
    assert login(client, member.username, "prompted-reset").status_code == 200


@pytest.mark.parametrize("password", ["short", "x" * 129])
def test_set_password_refuses_a_bad_length(runner, client, member, password):
    result = runner.invoke(args=["users", "set-password", member.username, "--password", password])
    assert result.exit_code != 0
    assert login(client, member.username).status_code == 200


def test_set_password_for_an_unknown_user_fails(runner):
    result = runner.invoke(args=["users", "set-password", "nobody", "--password", "reset-password"])
    assert result.exit_code != 0
    assert "nobody" in result.output


# --- flask users deactivate -----------------------------------------------------------------------


def test_deactivate(runner, client, member, auth_headers):
    headers = auth_headers(member)
    result = runner.invoke(args=["users", "deactivate", member.username])
    assert result.exit_code == 0, result.output
    assert find_user(member.username).is_active is False
    assert login(client, member.username).status_code == 403
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_deactivate_by_email(runner, member):
    assert runner.invoke(args=["users", "deactivate", member.email]).exit_code == 0
    assert find_user(member.username).is_active is False


def test_deactivate_an_unknown_user_fails(runner, member):
    result = runner.invoke(args=["users", "deactivate", "nobody"])
    assert result.exit_code != 0
    assert find_user(member.username).is_active is True


# --- flask seed demo ------------------------------------------------------------------------------


def test_seed_demo(runner, client):
    from finstack.seed.service import DEMO_PASSWORD
    from finstack.tasks.models import Task

    result = runner.invoke(args=["seed", "demo", "--users", "3", "--tasks", "50", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "Added 3 users" in result.output and "Added 50 tasks" in result.output

    db.session.expire_all()
    user_ids = set(db.session.scalars(sa.select(User.id)))
    assert len(user_ids) == 3
    tasks = db.session.scalars(sa.select(Task)).all()
    assert len(tasks) == 50
    assert {task.created_by for task in tasks} <= user_ids
    assert {task.contact_person_id for task in tasks} <= user_ids

    demo_user = db.session.scalar(sa.select(User).order_by(User.username))
    tokens = login(client, demo_user.username, DEMO_PASSWORD)
    assert tokens.status_code == 200, tokens.json
    headers = {"Authorization": f"Bearer {tokens.json['access_token']}"}
    assert client.get("/api/tasks", headers=headers).json["pagination"]["total"] == 50
    assert client.get("/api/users", headers=headers).json["pagination"]["total"] == 3


def test_seed_demo_twice_adds_more_users_without_clashes(runner):
    assert runner.invoke(args=["seed", "demo", "--users", "2", "--tasks", "0", "--seed", "1"]).exit_code == 0
    result = runner.invoke(args=["seed", "demo", "--users", "2", "--tasks", "5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert user_count() == 4


def test_seed_demo_refuses_zero_users(runner):
    result = runner.invoke(args=["seed", "demo", "--users", "0", "--tasks", "5"])
    assert result.exit_code != 0
    assert user_count() == 0


# --- the default admin ----------------------------------------------------------------------------


def test_default_admin_outside_production(app, client):
    assert ensure_default_admin(app) == "admin123"
    admin = find_user("admin")
    assert (admin.email, admin.role, admin.is_active) == ("admin@finstack.com", "admin", True)
    assert admin.email == DEFAULT_ADMIN["email"]
    response = login(client, "admin", "admin123")
    assert response.status_code == 200
    assert response.json["user"]["role"] == "admin"
    assert login(client, "admin@finstack.com", "admin123").status_code == 200


def test_default_admin_only_once(app):
    assert ensure_default_admin(app) == "admin123"
    assert ensure_default_admin(app) is None
    assert user_count() == 1


def test_no_default_admin_when_users_exist(app, member):
    assert ensure_default_admin(app) is None
    assert find_user("admin") is None
    assert user_count() == 1


def test_prepare_database_creates_the_default_admin(app, client):
    prepare_database(app)
    assert find_user("admin").role == "admin"
    assert login(client, "admin", "admin123").status_code == 200


def test_default_admin_password_outside_production_can_be_configured(app_config, request):
    app_config["ADMIN_PASSWORD"] = "configured-admin-pass"
    app = request.getfixturevalue("app")
    assert ensure_default_admin(app) == "configured-admin-pass"
    assert login(app.test_client(), "admin", "configured-admin-pass").status_code == 200


@pytest.fixture
def production_config(app_config):
    app_config.update(FINSTACK_ENV="production", SECRET_KEY=STRONG_SECRET, JWT_SECRET_KEY=STRONG_JWT_SECRET)
    return app_config


def test_production_default_admin_takes_the_configured_password(production_config, request):
    production_config["ADMIN_PASSWORD"] = "a-strong-admin-password"
    app = request.getfixturevalue("app")
    assert app.config["FINSTACK_ENV"] == "production"
    assert ensure_default_admin(app) == "a-strong-admin-password"
    client = app.test_client()
    assert login(client, "admin", "a-strong-admin-password").status_code == 200
    assert login(client, "admin", "admin123").status_code == 401


def test_production_default_admin_reads_finstack_admin_password(production_config, monkeypatch, request):
    monkeypatch.setenv("FINSTACK_ADMIN_PASSWORD", "from-the-environment")
    app = request.getfixturevalue("app")
    assert app.config["ADMIN_PASSWORD"] == "from-the-environment"
    assert ensure_default_admin(app) == "from-the-environment"
    assert login(app.test_client(), "admin", "from-the-environment").status_code == 200


def test_production_default_admin_gets_a_generated_password(production_config, request):
    app = request.getfixturevalue("app")
    assert not app.config["ADMIN_PASSWORD"]
    password = ensure_default_admin(app)
    assert password and password != "admin123" and len(password) >= 16
    client = app.test_client()
    assert login(client, "admin", password).status_code == 200
    assert login(client, "admin", "admin123").status_code == 401


def test_generated_passwords_differ(production_config, request):
    app = request.getfixturevalue("app")
    first = ensure_default_admin(app)
    db.session.execute(sa.delete(User))
    db.session.commit()
    assert ensure_default_admin(app) != first


# --- production secrets ---------------------------------------------------------------------------


def test_production_refuses_to_start_without_secrets(monkeypatch):
    monkeypatch.setenv("FINSTACK_ENV", "production")
    with pytest.raises(RuntimeError) as raised:
        create_app()
    message = str(raised.value)
    assert "production" in message
    assert "SECRET_KEY" in message and "JWT_SECRET_KEY" in message
    assert "32" in message


@pytest.mark.parametrize(
    ("secret", "jwt_secret", "named", "not_named"),
    [
        ("short", STRONG_JWT_SECRET, "SECRET_KEY", "JWT_SECRET_KEY"),
        (STRONG_SECRET, "x" * 31, "JWT_SECRET_KEY", None),
        (STRONG_SECRET, "", "JWT_SECRET_KEY", None),
    ],
)
def test_production_refuses_weak_secrets_from_the_environment(monkeypatch, secret, jwt_secret, named, not_named):
    monkeypatch.setenv("FINSTACK_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secret)
    monkeypatch.setenv("JWT_SECRET_KEY", jwt_secret)
    with pytest.raises(RuntimeError, match=named) as raised:
        create_app()
    if not_named:
        assert not_named not in str(raised.value)


def test_production_refuses_weak_secrets_from_overrides():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"FINSTACK_ENV": "production", "SECRET_KEY": "x" * 31, "JWT_SECRET_KEY": STRONG_JWT_SECRET})


def test_production_starts_with_strong_secrets(monkeypatch, database_url):
    monkeypatch.setenv("FINSTACK_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", STRONG_JWT_SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = create_app()
    assert app.config["FINSTACK_ENV"] == "production"
    assert app.config["SECRET_KEY"] == "k" * 32
    assert app.config["JWT_SECRET_KEY"] == STRONG_JWT_SECRET
    assert app.config["AUTO_MIGRATE"] is False
    assert not app.config.get("TESTING")


def test_unknown_environment_name_is_refused(monkeypatch):
    monkeypatch.setenv("FINSTACK_ENV", "staging")
    with pytest.raises(RuntimeError, match="FINSTACK_ENV"):
        create_app()


def test_heroku_style_database_url_is_normalised(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example/finstack")
    app = create_app({"FINSTACK_ENV": "testing"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql://someone@db.example/finstack"


# --- settings read from the environment -----------------------------------------------------------


def test_testing_defaults(app):
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(hours=24)
    assert app.config["MAX_CONTENT_LENGTH"] and app.config["MAX_CONTENT_LENGTH"] > 0
    assert app.config["REGISTRATION_OPEN"] is True
    assert app.config["CORS_ORIGINS"] == ["http://localhost:4200", "http://127.0.0.1:4200"]


def test_access_token_lifetime_from_the_environment(monkeypatch, request):
    monkeypatch.setenv("JWT_ACCESS_TOKEN_MINUTES", "90")
    client = request.getfixturevalue("client")
    member = request.getfixturevalue("member")
    body = login(client, member.username).json
    claims = decode_token(body["access_token"])
    assert claims["exp"] - claims["iat"] == 90 * 60
    assert body["expires_in"] == 90 * 60


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE"])
def test_registration_can_be_closed_from_the_environment(monkeypatch, request, value):
    monkeypatch.setenv("REGISTRATION_OPEN", value)
    client = request.getfixturevalue("client")
    response = client.post(
        "/api/auth/register",
        json={"username": "newbie", "email": "newbie@example.com", "password": "long-enough", "full_name": "N"},
    )
    assert response.status_code == 403, response.json
    assert user_count() == 0


def test_max_content_length_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("MAX_CONTENT_LENGTH", str(64 * 1024 * 1024))
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024 * 1024


# --- CORS -----------------------------------------------------------------------------------------


@pytest.fixture
def cors_app(monkeypatch, database_url):
    """Build an app with CORS_ORIGIN set to a value (or unset for None)."""
    apps = []

    def build(value):
        if value is None:
            monkeypatch.delenv("CORS_ORIGIN", raising=False)
        else:
            monkeypatch.setenv("CORS_ORIGIN", value)
        apps.append(create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url}))
        return apps[-1]

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["http://localhost:4200", "http://127.0.0.1:4200"]),
        ("https://app.example.com", ["https://app.example.com"]),
        (" https://a.example , https://b.example ,, ", ["https://a.example", "https://b.example"]),
        ("*", []),
        (" * ", []),
        ("https://a.example,*", ["https://a.example"]),
        ("", []),
    ],
)
def test_cors_origin_parsing_never_yields_a_wildcard(cors_app, value, expected):
    app = cors_app(value)
    assert app.config["CORS_ORIGINS"] == expected
    assert "*" not in app.config["CORS_ORIGINS"]


def preflight(client, origin, path="/api/tasks"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )


@pytest.mark.parametrize("origin", ["http://localhost:4200", "http://127.0.0.1:4200"])
def test_preflight_from_an_allowed_origin(client, origin):
    response = preflight(client, origin)
    assert response.status_code < 400
    assert response.headers["Access-Control-Allow-Origin"] == origin
    allowed_headers = response.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in response.headers.get("Access-Control-Allow-Methods", "")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost:4200.evil.example",
        "http://localhost:4201",
        "https://localhost:4200",
        "null",
    ],
)
def test_preflight_from_another_origin_gets_no_allow_origin(client, origin):
    response = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_simple_request_cors_headers(client):
    allowed = client.get("/api/health", headers={"Origin": "http://localhost:4200"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:4200"
    refused = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_configured_origins_replace_the_defaults(cors_app):
    client = cors_app("https://app.example.com").test_client()
    assert (
        preflight(client, "https://app.example.com").headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    )
    assert "Access-Control-Allow-Origin" not in preflight(client, "http://localhost:4200").headers


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:4200"])
def test_a_wildcard_origin_allows_nobody(cors_app, origin):
    client = cors_app("*").test_client()
    response = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert client.get("/api/health", headers={"Origin": origin}).headers.get("Access-Control-Allow-Origin") != "*"
