"""Configuration: every setting is read from the environment and validated here, in one table, at start.

`FINSTACK_ENV` picks the defaults of one environment class; the environment overrides them; `create_app(config)`
lays a dict of overrides on top. A bad value raises `ConfigError`, whose text is the one line an operator sees:
`Configuration error: MAX_UPLOAD_MB must be a whole number of megabytes, got 'ten'`.

This module uses the standard library only: gunicorn.conf.py loads it by path in the master process to refuse a
bad configuration before any worker starts, without importing Flask there.
"""

import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_CORS_ORIGINS = "http://localhost:4200,http://127.0.0.1:4200"
MIN_SECRET_LENGTH = 32
MB = 1024 * 1024
CONFIG_ERROR_EXIT_STATUS = 2

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ConfigError(RuntimeError):
    """A setting is missing or malformed; `str()` is the whole message, one line."""

    def __init__(self, message):
        super().__init__(f"Configuration error: {message}")


def exit_on_config_error(error):
    """What every entry point does with a ConfigError: one line on stderr, exit status 2, no traceback."""
    print(str(error), file=sys.stderr)
    raise SystemExit(CONFIG_ERROR_EXIT_STATUS)


# --- parsers: text -> value, ValueError when the text is not of the expected form ---------------------------------


def _text(value):
    return value


def _optional_text(value):
    return value or None


def _boolean(value):
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError


def _whole(minimum, maximum=None):
    def parse(value):
        number = int(value.strip())
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError
        return number

    return parse


def _number(minimum, strictly_above=False):
    def parse(value):
        number = float(value.strip())
        if number != number or number < minimum or (strictly_above and number == minimum):  # NaN included
            raise ValueError
        return number

    return parse


def _choice(*options):
    def parse(value):
        lowered = value.strip().lower()
        if lowered not in options:
            raise ValueError
        return lowered

    return parse


def _url(*schemes):
    def parse(value):
        value = value.strip()
        if not _URL.match(value) or (schemes and value.split("://", 1)[0].lower() not in schemes):
            raise ValueError
        return value

    return parse


def _origins(value):
    # "*" is dropped, never honoured: credentials-bearing CORS must name its origins.
    return [origin.strip() for origin in value.split(",") if origin.strip() and origin.strip() != "*"]


def _rate_limits(value):
    parts = [part for part in re.split(r"[;,]", value) if part.strip()]
    if not parts or not all(_RATE.match(part) for part in parts):
        raise ValueError
    return value.strip()


def _minutes(value):
    return timedelta(minutes=_whole(1)(value))


def _days(value):
    return timedelta(days=_whole(1)(value))


def _urgency_minutes(defaults):
    """`critical=60,high=240`: minutes per ticket urgency; urgencies left out keep their default."""

    def parse(value):
        minutes = dict(defaults)
        for part in filter(None, (part.strip() for part in value.split(","))):
            urgency, _, number = part.partition("=")
            if urgency.strip().lower() not in defaults:
                raise ValueError
            minutes[urgency.strip().lower()] = _whole(1)(number)
        return minutes

    return parse


SLA_FIRST_RESPONSE_DEFAULTS = {"critical": 30, "high": 120, "medium": 480, "low": 1440}
SLA_RESOLUTION_DEFAULTS = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}


@dataclass(frozen=True)
class Setting:
    env: str  # the environment variable
    parse: Callable[[str], Any]
    expected: str  # completes "<env> must be …"
    default: Any = None
    key: str = ""  # the app.config key, when it differs from `env`
    blank_is_unset: bool = True  # VAR= (as compose files and .env templates leave them) means "use the default"

    @property
    def config_key(self):
        return self.key or self.env


# Every variable FinStack reads. The README's configuration table lists the same rows.
SETTINGS = (
    Setting(
        "FINSTACK_ENV",
        _choice("development", "production", "testing"),
        "one of development, production, testing",
        "development",
    ),
    Setting("SECRET_KEY", _optional_text, "a random string"),
    Setting("JWT_SECRET_KEY", _optional_text, "a random string"),
    Setting(
        "DATABASE_URL",
        _url(),
        "a database URL such as postgresql://user:password@host/finstack or sqlite:///instance/finstack.db",
        key="SQLALCHEMY_DATABASE_URI",
    ),
    Setting(
        "CORS_ORIGIN",
        _origins,
        "a comma-separated list of origins",
        _origins(DEFAULT_CORS_ORIGINS),
        key="CORS_ORIGINS",
        blank_is_unset=False,  # CORS_ORIGIN= allows no cross-origin caller at all
    ),
    Setting("HOST", _text, "a host name or address", "127.0.0.1"),
    Setting("PORT", _whole(1, 65535), "a TCP port number (1-65535)", 5000),
    Setting("UPLOAD_FOLDER", _optional_text, "a directory path"),
    Setting("MAX_UPLOAD_MB", _whole(1), "a whole number of megabytes", 10),
    Setting("MAX_CONTENT_LENGTH", _whole(1), "a whole number of bytes", 16 * MB),
    Setting(
        "JWT_ACCESS_TOKEN_MINUTES",
        _minutes,
        "a whole number of minutes",
        timedelta(hours=24),
        key="JWT_ACCESS_TOKEN_EXPIRES",
    ),
    Setting(
        "JWT_REFRESH_TOKEN_DAYS", _days, "a whole number of days", timedelta(days=30), key="JWT_REFRESH_TOKEN_EXPIRES"
    ),
    # A refresh token presented again within this many seconds of its rotation gets the same successor (two tabs
    # refreshing at once); later, it is a reuse and ends its sign-in.
    Setting("REFRESH_REUSE_GRACE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 10),
    Setting("REGISTRATION_OPEN", _boolean, "true or false", True),
    Setting("FINSTACK_ADMIN_PASSWORD", _optional_text, "a password", key="ADMIN_PASSWORD"),
    Setting("REDIS_URL", _url("redis", "rediss", "unix"), "a Redis URL such as redis://127.0.0.1:6379/0"),
    # "threading" serves `python app.py`; gunicorn.conf.py sets "eventlet" in its workers.
    Setting(
        "SOCKETIO_ASYNC_MODE",
        _choice("threading", "eventlet", "gevent", "gevent_uwsgi"),
        "one of threading, eventlet, gevent, gevent_uwsgi",
        "threading",
    ),
    Setting("PAGINATION_EXACT_LIMIT", _whole(1), "a whole number of rows, 1 or more", 10000),
    Setting("PAGINATION_TRUSTED_ESTIMATE", _whole(1), "a whole number of rows, 1 or more", 20000),
    Setting("SOCKET_RECHECK_SECONDS", _number(0, strictly_above=True), "a number of seconds above 0", 0.5),
    Setting("MAIL_SERVER", _optional_text, "an SMTP host name"),
    Setting("MAIL_PORT", _whole(1, 65535), "a TCP port number (1-65535)", 587),
    Setting("MAIL_USE_TLS", _boolean, "true or false", True),
    Setting("MAIL_USE_SSL", _boolean, "true or false", False),
    Setting("MAIL_USERNAME", _optional_text, "a user name"),
    Setting("MAIL_PASSWORD", _optional_text, "a password"),
    Setting(
        "MAIL_DEFAULT_SENDER",
        _text,
        "an address such as FinStack <noreply@example.com>",
        "FinStack <noreply@finstack.local>",
    ),
    Setting("MAIL_TIMEOUT", _number(0, strictly_above=True), "a number of seconds above 0", 10.0),
    Setting("MAIL_MAX_ATTEMPTS", _whole(1), "a whole number of attempts (1 or more)", 5),
    Setting("MAIL_RETRY_DELAY", _number(0), "a number of seconds (0 or more)", 2.0),
    # Noise control: a notification's e-mail waits this long and is dropped if the notification was read meanwhile;
    # repeats of one type about one task to one person within the collapse window update one row.
    Setting("MAIL_GRACE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 120),
    Setting("NOTIFICATION_COLLAPSE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 60),
    # Durable jobs (finstack/jobs): retries of every kind but mail (which keeps MAIL_MAX_ATTEMPTS, MAIL_RETRY_DELAY),
    # how long a worker holds a claimed job before another may take it over, how often an idle worker looks again.
    Setting("JOB_MAX_ATTEMPTS", _whole(1), "a whole number of attempts (1 or more)", 10),
    Setting("JOB_RETRY_DELAY", _number(0), "a number of seconds (0 or more)", 2.0),
    Setting("JOB_LEASE_SECONDS", _whole(1), "a whole number of seconds (1 or more)", 300),
    Setting("JOB_POLL_SECONDS", _number(0, strictly_above=True), "a number of seconds above 0", 1.0),
    Setting("JOB_RETENTION_DAYS", _whole(1), "a whole number of days (1 or more)", 7),
    # `python app.py` runs a worker thread in its own process (the embedded default needs nothing else).
    Setting("JOBS_IN_PROCESS", _boolean, "true or false", True),
    # Periodic jobs the workers run, once per period across all of them; 0 turns one off (cron can run it instead).
    Setting("SCHEDULE_OVERDUE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 900),
    Setting("SCHEDULE_REMINDERS_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 60),
    Setting("SCHEDULE_SLA_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 60),
    Setting("SCHEDULE_MISUSE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 3600),
    Setting("SCHEDULE_PRUNE_JOBS_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 3600),
    Setting("SCHEDULE_DIGEST_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 300),
    # Webhooks (finstack/webhooks): each delivery retries with the jobs' back-off until it is delivered, used its
    # attempts or is older than WEBHOOK_MAX_AGE_SECONDS; a run of WEBHOOK_DISABLE_AFTER failed deliveries disables it.
    Setting("WEBHOOK_TIMEOUT_SECONDS", _number(0, strictly_above=True), "a number of seconds above 0", 10.0),
    Setting("WEBHOOK_MAX_ATTEMPTS", _whole(1), "a whole number of attempts (1 or more)", 40),
    Setting("WEBHOOK_RETRY_DELAY", _number(0), "a number of seconds (0 or more)", 60.0),
    Setting("WEBHOOK_MAX_AGE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 86400),
    Setting("WEBHOOK_DISABLE_AFTER", _whole(1), "a whole number of failed deliveries (1 or more)", 10),
    Setting("WEBHOOK_ALLOW_PRIVATE", _boolean, "true or false", False),
    # The per-user event log (GET /api/events, replay at Socket.IO connect): how long events are kept, how often the
    # worker prunes the older ones.
    Setting("EVENT_RETENTION_DAYS", _whole(1), "a whole number of days (1 or more)", 7),
    Setting("SCHEDULE_PRUNE_EVENTS_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 3600),
    Setting("RATELIMIT_ENABLED", _boolean, "true or false", True),
    Setting("LOGIN_RATE_LIMIT", _rate_limits, "a rate such as 5/minute (several joined by ';')", "5/minute"),
    Setting("LOGIN_ACCOUNT_RATE_LIMIT", _rate_limits, "a rate such as 20/hour (several joined by ';')", "20/hour"),
    Setting("REGISTER_RATE_LIMIT", _rate_limits, "a rate such as 10/hour (several joined by ';')", "10/hour"),
    Setting("PASSWORD_RATE_LIMIT", _rate_limits, "a rate such as 5/minute (several joined by ';')", "5/minute;20/hour"),
    Setting("DEFAULT_RATE_LIMIT", _rate_limits, "a rate such as 600/minute (several joined by ';')", "600/minute"),
    Setting("PROXY_FIX_X_FOR", _whole(0), "a whole number of trusted proxies (0 or more)", 0),
    # Partial uploads and stored files no row owns are removed (server start, `flask attachments clean`) once older
    # than this: younger ones may be uploads still arriving or between their move and their commit.
    Setting("UPLOAD_CLEANUP_AGE_SECONDS", _whole(0), "a whole number of seconds (0 or more)", 3600),
    # Helpdesk: a requester may reopen a resolved or closed ticket this many days after its resolution; creates at
    # most TICKETS_PER_DAY tickets in any 24 hours (agents and admins are exempt). The router and the content check
    # are chosen by name, so a model-backed one can be plugged in later.
    Setting("TICKET_REOPEN_DAYS", _whole(0), "a whole number of days (0 or more)", 7),
    Setting("TICKETS_PER_DAY", _whole(1), "a whole number of tickets (1 or more)", 5),
    Setting("TICKET_ROUTER", _choice("keywords"), "keywords", "keywords"),
    Setting("TICKET_CONTENT_CHECK", _choice("heuristics"), "heuristics", "heuristics"),
    # Helpdesk SLA targets in wall-clock minutes from routing, per urgency (`finstack/tickets/sla.py`).
    Setting(
        "SLA_FIRST_RESPONSE_MINUTES",
        _urgency_minutes(SLA_FIRST_RESPONSE_DEFAULTS),
        "urgency=minutes pairs such as critical=30,high=120 (urgencies: critical, high, medium, low)",
        SLA_FIRST_RESPONSE_DEFAULTS,
    ),
    Setting(
        "SLA_RESOLUTION_MINUTES",
        _urgency_minutes(SLA_RESOLUTION_DEFAULTS),
        "urgency=minutes pairs such as critical=240,high=1440 (urgencies: critical, high, medium, low)",
        SLA_RESOLUTION_DEFAULTS,
    ),
    # `flask tickets sweep-sla` claims at most this many breaches of each kind per transaction.
    Setting("SLA_SWEEP_CHUNK", _whole(1), "a whole number of tickets (1 or more)", 10_000),
    # Answers `POST /api/helpdesk/ask` and a ticket's suggestions (finstack/tickets/kb.py).
    Setting("HELPDESK_ANSWERER", _choice("fulltext"), "fulltext", "fulltext"),
    Setting("REQUEST_READ_TIMEOUT", _whole(1), "a whole number of seconds (1 or more)", 30),
    Setting("REQUEST_HEADER_TIMEOUT", _whole(1), "a whole number of seconds (1 or more)", 5),
    Setting(
        "LOG_LEVEL",
        _choice("debug", "info", "warning", "error", "critical"),
        "one of debug, info, warning, error, critical",
        "info",
    ),
    Setting("LOG_FORMAT", _choice("text", "json"), "text or json", "text"),
    # Read by gunicorn.conf.py only.
    Setting("BIND", _optional_text, "an address such as 0.0.0.0:5000 or unix:/run/finstack.sock"),
    Setting("WORKER_CONNECTIONS", _whole(1), "a whole number of connections", 1000),
    Setting("GUNICORN_TIMEOUT", _whole(1), "a whole number of seconds", 60),
    Setting("ACCESS_LOG", _optional_text, "a file path, or - for stdout"),
)


class BaseConfig:
    """Defaults that do not come from the environment, and per-environment defaults of the settings above."""

    VERSION = "1.0.0"
    AUTO_MIGRATE = False
    # No pre-ping (a round trip on every checkout, i.e. every request): connections are recycled after 30 minutes,
    # under every usual server or proxy idle timeout, and a connection a database restart broke fails one statement,
    # after which SQLAlchemy discards the whole pool (see README "Lists").
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_recycle": 1800}
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_COOKIE_CSRF_PROTECT = False  # no cookies, so no random `csrf` claim: a refresh token can be re-encoded
    JWT_ERROR_MESSAGE_KEY = "error"
    PASSWORD_HASH_METHOD = "scrypt"

    API_TITLE = "FinStack API"
    API_VERSION = VERSION
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    # Served by the app itself (finstack/extensions.py DOCS_ASSETS): the docs pages need no internet.
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/swagger-ui-dist/"
    OPENAPI_REDOC_PATH = "/redoc"
    OPENAPI_REDOC_URL = "/api/docs/assets/redoc/bundles/redoc.standalone.js"


class DevelopmentConfig(BaseConfig):
    AUTO_MIGRATE = True  # `python app.py` migrates the embedded database itself


class ProductionConfig(BaseConfig):
    pass


class TestingConfig(BaseConfig):
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"
    JWT_SECRET_KEY = "testing-jwt-secret-key-that-is-long-enough-0123456789"
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    RATELIMIT_ENABLED = False
    # A test that wants periodic jobs turns its schedule on; no worker thread runs unless a test starts one.
    JOBS_IN_PROCESS = False
    SCHEDULE_OVERDUE_SECONDS = 0
    SCHEDULE_REMINDERS_SECONDS = 0
    SCHEDULE_SLA_SECONDS = 0
    SCHEDULE_MISUSE_SECONDS = 0
    SCHEDULE_PRUNE_JOBS_SECONDS = 0
    SCHEDULE_DIGEST_SECONDS = 0
    MAIL_GRACE_SECONDS = 0  # tests of other domains expect their mail at once; tests/test_noise.py sets a grace
    SCHEDULE_PRUNE_EVENTS_SECONDS = 0


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def read_environment(environ):
    """Parse every variable of SETTINGS that `environ` sets: {config key: value}. Raises ConfigError."""
    values = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None or (setting.blank_is_unset and not raw.strip()):
            continue
        try:
            values[setting.config_key] = setting.parse(raw)
        except ValueError:
            raise ConfigError(f"{setting.env} must be {setting.expected}, got {raw!r}") from None
    return values


def validate_environment(environ):
    """Everything that can be checked without an app (gunicorn's master runs this): returns the parsed values."""
    values = read_environment(environ)
    if values.get("FINSTACK_ENV") == "production":
        _require_strong_secrets(values)
    return values


def normalise_database_url(url, base=None):
    """`postgres://` (what hosting platforms hand out) becomes `postgresql://`; a relative SQLite path is made
    absolute against `base` (the working directory), as SQLAlchemy itself reads it, not Flask-SQLAlchemy's
    instance folder."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    prefix, _, rest = url.partition(":///")
    if prefix.split("+")[0] == "sqlite" and rest and not rest.startswith(("/", ":memory:", "file:")):
        path, _, query = rest.partition("?")
        absolute = Path(base or os.getcwd()) / path
        return f"{prefix}:///{absolute}" + (f"?{query}" if query else "")
    return url


def load_config(app, overrides):
    """Fill `app.config`: the settings' defaults, the environment class, the environment, then `overrides`."""
    overrides = dict(overrides or {})
    values = read_environment(os.environ)
    env_name = overrides.get("FINSTACK_ENV") or values.get("FINSTACK_ENV", "development")
    if env_name not in CONFIGS:
        raise ConfigError(f"FINSTACK_ENV must be one of {', '.join(CONFIGS)}, got {env_name!r}")
    app.config.update({setting.config_key: setting.default for setting in SETTINGS})
    app.config.from_object(CONFIGS[env_name])
    app.config.update(values)
    app.config.update(overrides)
    app.config["FINSTACK_ENV"] = env_name

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'finstack.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    _make_sqlite_directory(app.config["SQLALCHEMY_DATABASE_URI"])
    if not app.config["UPLOAD_FOLDER"]:
        app.config["UPLOAD_FOLDER"] = str(instance / "uploads")
    # Room for the multipart envelope around the largest file allowed.
    upload_ceiling = (app.config["MAX_UPLOAD_MB"] + 1) * MB
    if app.config["MAX_CONTENT_LENGTH"] is not None and app.config["MAX_CONTENT_LENGTH"] < upload_ceiling:
        app.config["MAX_CONTENT_LENGTH"] = upload_ceiling

    if env_name == "production":
        _require_strong_secrets(app.config)
    else:
        _fill_install_secrets(app.config, instance / "secrets.json")


def _make_sqlite_directory(url):
    """SQLite creates its file but not the folder it lives in (`sqlite:///data/finstack.db` on a fresh checkout)."""
    prefix, _, path = url.partition(":///")
    if prefix.split("+")[0] == "sqlite" and path.startswith("/"):
        Path(path.partition("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def _require_strong_secrets(config):
    weak = [
        key for key in ("SECRET_KEY", "JWT_SECRET_KEY") if not config.get(key) or len(config[key]) < MIN_SECRET_LENGTH
    ]
    if weak:
        raise ConfigError(
            " and ".join(weak)
            + f" must be random strings of at least {MIN_SECRET_LENGTH} characters in production, e.g. from"
            " python -c 'import secrets; print(secrets.token_hex(32))'"
        )


def _fill_install_secrets(config, path):
    """Outside production, missing secrets are generated once per install and kept in instance/."""
    missing = [key for key in ("SECRET_KEY", "JWT_SECRET_KEY") if not config.get(key)]
    if not missing:
        return
    stored = json.loads(path.read_text()) if path.exists() else {}
    if any(key not in stored for key in missing):
        stored.update({key: secrets.token_hex(32) for key in missing if key not in stored})
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    for key in missing:
        config[key] = stored[key]
