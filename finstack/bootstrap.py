"""Installing a database: migrate it to the latest schema and make the first admin.

Importing the app never does this (so `flask --help`, `flask routes` or gunicorn importing `app:app` touch
nothing); `python app.py` (the embedded quick start), `flask setup` and the container entrypoint do.
"""

import logging
import secrets
from contextlib import contextmanager

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy.exc import IntegrityError, OperationalError

from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tickets import service as tickets
from finstack.tickets.models import Department
from finstack.users import service as users
from finstack.users.models import User

log = logging.getLogger(__name__)

DEFAULT_ADMIN = {"username": "admin", "email": "admin@finstack.com", "full_name": "Administrator"}
DEVELOPMENT_ADMIN_PASSWORD = "admin123"
# Any fixed 64-bit number: the PostgreSQL advisory lock that lets one `flask setup` at a time migrate.
SETUP_LOCK_KEY = 0x46494E5354414B  # "FINSTAK"


@contextmanager
def setup_lock():
    """On PostgreSQL, hold an advisory lock so two containers starting at once migrate one after the other (the
    second then finds the schema at head and the admin made). SQLite files are not shared between hosts."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": SETUP_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SETUP_LOCK_KEY})
            connection.commit()


def setup_database(app):
    """Migrate to head, create the helpdesk's default departments and the first admin if there are no users;
    returns the new admin's password or None."""
    with setup_lock():
        upgrade()
        tickets.ensure_default_departments()
        return ensure_default_admin(app)


def prepare_database(app):
    """`python app.py`: development migrates itself so the quick start just works; production expects `flask setup`.
    Returns the password of an admin it created, or None."""
    with app.app_context():
        if app.config["AUTO_MIGRATE"]:
            return setup_database(app)
        inspector = sa.inspect(db.engine)
        if inspector.has_table(User.__tablename__):
            if inspector.has_table(Department.__tablename__):  # an older schema has no helpdesk yet
                tickets.ensure_default_departments()
            return ensure_default_admin(app)
        log.warning("The database has no tables yet: run `flask setup`")
        return None


def ensure_default_admin(app):
    """With no users yet, create `admin`; returns the password it was given, or None. The caller shows it: it is
    never logged."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return None
    if app.config["FINSTACK_ENV"] == "production":
        password = app.config["ADMIN_PASSWORD"] or secrets.token_urlsafe(16)
    else:
        password = app.config["ADMIN_PASSWORD"] or DEVELOPMENT_ADMIN_PASSWORD
    try:
        users.create_user(**DEFAULT_ADMIN, password=password, role="admin")
    except (IntegrityError, ApiError):
        db.session.rollback()  # another process created it first
        return None
    return password


def announce_admin(app, password):
    """Tell the person at the terminal the first admin's password, once (stdout, not the log)."""
    if password is None:
        return
    if app.config["ADMIN_PASSWORD"]:
        click.echo("Created the admin 'admin' with the password from FINSTACK_ADMIN_PASSWORD.")
    else:
        click.echo(f"Created the admin 'admin' with the password: {password}")
        if app.config["FINSTACK_ENV"] == "production":
            click.echo("It is shown only this once: sign in and change it now.")


@click.command("setup")
@with_appcontext
def setup_command():
    """Migrate the database to the latest schema and create the first admin if there are no users."""
    app = current_app._get_current_object()
    try:
        password = setup_database(app)
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise click.ClickException(f"Cannot set up the database: {reason}") from error
    click.echo("The database schema is up to date.")
    if password is None:
        click.echo("Users exist already: no admin was created (the admin exists).")
    announce_admin(app, password)
