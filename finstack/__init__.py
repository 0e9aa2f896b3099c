"""FinStack: a team work hub for a services/finance firm."""

from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from finstack.config import load_config
from finstack.core import logs
from finstack.core.json_provider import FinStackJSONProvider
from finstack.errors import register_error_handlers
from finstack.extensions import api, cors, db, jwt, migrate, socketio
from finstack.realtime.origins import origin_checker

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent.parent / "migrations")

# Response headers a browser front end may read (CORS hides all but a few by default): file names of downloads,
# when to retry, the request id to quote in a bug report, and the rate-limit counters in both spellings.
CORS_EXPOSED_HEADERS = [
    "Content-Disposition",
    "Retry-After",
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
]
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight answer


def create_app(config=None):
    """Build the app. `config` is a dict laid over the environment's configuration."""
    load_dotenv()
    app = Flask(__name__)
    app.json = FinStackJSONProvider(app)
    load_config(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_rate_limits(app)
    register_commands(app)
    register_socket_handlers(app)
    trust_proxies(app)
    logs.init_app(app)
    return app


def register_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIRECTORY, render_as_batch=True)
    jwt.init_app(app)
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE,
    )
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    # With REDIS_URL the message queue carries every emit to every process (gunicorn processes, the CLI).
    # Without it, client_manager=None resets what an earlier init_app in this process may have configured.
    queue = {"message_queue": app.config["REDIS_URL"]} if app.config["REDIS_URL"] else {"client_manager": None}
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        cors_allowed_origins=origin_checker(app.config["CORS_ORIGINS"]),
        **queue,
    )


def register_rate_limits(app):
    from finstack.core import ratelimit

    ratelimit.init_app(app)


def trust_proxies(app):
    """Take the client address from X-Forwarded-For only when PROXY_FIX_X_FOR trusted proxies are declared."""
    if app.config["PROXY_FIX_X_FOR"] > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"])


def register_blueprints(app):
    from finstack import (
        activity,
        analytics,
        attachments,
        audit,
        auth,
        chat,
        comments,
        dashboard,
        notifications,
        projects,
        reports,
        stream,
        tags,
        tasks,
        teams,
        tickets,
        users,
        webhooks,
    )
    from finstack.core import health

    for module in (
        health,
        auth,
        users,
        tasks,
        comments,
        attachments,
        analytics,
        reports,
        notifications,
        audit,
        chat,
        teams,
        projects,
        tags,
        activity,
        dashboard,
        tickets,
        webhooks,
        stream,
    ):
        api.register_blueprint(module.bp)


def register_commands(app):
    from finstack.attachments.cli import attachments_cli
    from finstack.bootstrap import setup_command
    from finstack.jobs.cli import worker_command
    from finstack.seed.cli import seed_cli
    from finstack.tasks.cli import stats_cli, tasks_cli
    from finstack.tickets.cli import tickets_cli
    from finstack.users.cli import users_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
    app.cli.add_command(tasks_cli)
    app.cli.add_command(stats_cli)
    app.cli.add_command(tickets_cli)
    app.cli.add_command(attachments_cli)
    app.cli.add_command(setup_command)
    app.cli.add_command(worker_command)


def register_socket_handlers(app):
    """Bind the Socket.IO event handlers to the server socketio.init_app built for this app."""
    from finstack import realtime

    realtime.init_app(app)
