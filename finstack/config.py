"""Configuration classes. Everything comes from the environment (a `.env` file is read too).

`FINSTACK_ENV` picks the class; `create_app(config)` lays a dict of overrides on top.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

DEFAULT_CORS_ORIGINS = "http://localhost:4200,http://127.0.0.1:4200"
MIN_SECRET_LENGTH = 32
MB = 1024 * 1024


def _env_bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def normalise_database_url(url):
    """Hosting platforms hand out `postgres://` URLs, which SQLAlchemy 2 no longer accepts."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


class BaseConfig:
    # Settings from the environment are properties, read when `create_app` builds the configuration (after it
    # loads `.env`), not when this module is imported: a `.env` file, or a changed environment, then counts.

    FINSTACK_ENV = "development"
    VERSION = "1.0.0"
    AUTO_MIGRATE = False
    SECRET_KEY = None
    JWT_SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    JWT_ACCESS_TOKEN_EXPIRES = property(lambda self: timedelta(minutes=_env_int("JWT_ACCESS_TOKEN_MINUTES", 24 * 60)))
    JWT_REFRESH_TOKEN_EXPIRES = property(lambda self: timedelta(days=_env_int("JWT_REFRESH_TOKEN_DAYS", 30)))
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_ERROR_MESSAGE_KEY = "error"

    # Attachments: files over MAX_UPLOAD_MB are refused (413) while they are written to disk.
    # MAX_CONTENT_LENGTH caps whole request bodies; load_config keeps it at least 1 MB above the upload limit.
    MAX_UPLOAD_MB = property(lambda self: _env_int("MAX_UPLOAD_MB", 10))
    MAX_CONTENT_LENGTH = property(lambda self: _env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024))
    PASSWORD_HASH_METHOD = "scrypt"
    REGISTRATION_OPEN = property(lambda self: _env_bool("REGISTRATION_OPEN", True))
    ADMIN_PASSWORD = property(lambda self: os.environ.get("FINSTACK_ADMIN_PASSWORD"))

    HOST = property(lambda self: os.environ.get("HOST", "127.0.0.1"))
    PORT = property(lambda self: _env_int("PORT", 5000))
    UPLOAD_FOLDER = property(lambda self: os.environ.get("UPLOAD_FOLDER"))
    # "threading" serves `python app.py`; gunicorn.conf.py sets "eventlet" for the production server.
    SOCKETIO_ASYNC_MODE = property(lambda self: os.environ.get("SOCKETIO_ASYNC_MODE", "threading"))
    # Set REDIS_URL (redis://host:6379/0) when more than one process serves sockets or the CLI must reach them:
    # it becomes the Socket.IO message queue, so an emit from any process reaches every connected client.
    REDIS_URL = property(lambda self: os.environ.get("REDIS_URL") or None)
    # How often each process re-checks its sockets' tokens and accounts (logout, deactivation), in seconds.
    SOCKET_RECHECK_SECONDS = property(lambda self: float(os.environ.get("SOCKET_RECHECK_SECONDS", "0.5")))

    # Outgoing mail is off unless MAIL_SERVER is set.
    MAIL_SERVER = property(lambda self: os.environ.get("MAIL_SERVER"))
    MAIL_PORT = property(lambda self: _env_int("MAIL_PORT", 587))
    MAIL_USE_TLS = property(lambda self: _env_bool("MAIL_USE_TLS", True))
    MAIL_USE_SSL = property(lambda self: _env_bool("MAIL_USE_SSL", False))
    MAIL_USERNAME = property(lambda self: os.environ.get("MAIL_USERNAME"))
    MAIL_PASSWORD = property(lambda self: os.environ.get("MAIL_PASSWORD"))
    MAIL_DEFAULT_SENDER = property(
        lambda self: os.environ.get("MAIL_DEFAULT_SENDER", "FinStack <noreply@finstack.local>")
    )
    MAIL_TIMEOUT = property(lambda self: float(os.environ.get("MAIL_TIMEOUT", "10")))
    MAIL_MAX_ATTEMPTS = property(lambda self: _env_int("MAIL_MAX_ATTEMPTS", 5))
    MAIL_RETRY_DELAY = property(lambda self: float(os.environ.get("MAIL_RETRY_DELAY", "2")))

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

    @property
    def CORS_ORIGINS(self):  # noqa: N802 - Flask config keys are upper case
        raw = os.environ.get("CORS_ORIGIN", DEFAULT_CORS_ORIGINS)
        return [origin.strip() for origin in raw.split(",") if origin.strip() and origin.strip() != "*"]


class DevelopmentConfig(BaseConfig):
    AUTO_MIGRATE = True


class ProductionConfig(BaseConfig):
    FINSTACK_ENV = "production"


class TestingConfig(BaseConfig):
    FINSTACK_ENV = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"
    JWT_SECRET_KEY = "testing-jwt-secret-key-that-is-long-enough-0123456789"
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def load_config(app, overrides):
    """Fill `app.config` from the class `FINSTACK_ENV` names, then the overrides, then derived defaults."""
    env_name = (overrides or {}).get("FINSTACK_ENV") or os.environ.get("FINSTACK_ENV", "development")
    if env_name not in CONFIGS:
        raise RuntimeError(f"FINSTACK_ENV must be one of {', '.join(CONFIGS)}, not {env_name!r}")
    config_object = CONFIGS[env_name]()
    app.config.from_object(config_object)
    app.config["CORS_ORIGINS"] = config_object.CORS_ORIGINS
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config.update(overrides or {})

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'finstack.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
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


def _require_strong_secrets(config):
    weak = [
        key for key in ("SECRET_KEY", "JWT_SECRET_KEY") if not config.get(key) or len(config[key]) < MIN_SECRET_LENGTH
    ]
    if weak:
        raise RuntimeError(
            "Refusing to start in production: set "
            + " and ".join(weak)
            + f" to random strings of at least {MIN_SECRET_LENGTH} characters, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))'"
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
