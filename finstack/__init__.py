"""FinStack: a team work hub for a services/finance firm."""

from pathlib import Path

from dotenv import load_dotenv
from flask import Flask

from finstack.config import load_config
from finstack.errors import register_error_handlers
from finstack.extensions import api, cors, db, jwt, migrate, socketio

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config=None):
    """Build the app. `config` is a dict laid over the environment's configuration."""
    load_dotenv()
    app = Flask(__name__)
    load_config(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIRECTORY, render_as_batch=True)
    jwt.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        cors_allowed_origins=app.config["CORS_ORIGINS"],
    )


def register_blueprints(app):
    from finstack import analytics, audit, auth, notifications, tasks, users
    from finstack.core import health

    for module in (health, auth, users, tasks, analytics, notifications, audit):
        api.register_blueprint(module.bp)


def register_commands(app):
    from finstack.seed.cli import seed_cli
    from finstack.users.cli import users_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
