"""What a server does once at start: migrate the embedded database, make the first admin."""

import logging
import secrets

import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy.exc import IntegrityError

from finstack.errors import ApiError
from finstack.extensions import db
from finstack.users import service as users
from finstack.users.models import User

log = logging.getLogger(__name__)

DEFAULT_ADMIN = {"username": "admin", "email": "admin@finstack.com", "full_name": "Administrator"}
DEVELOPMENT_ADMIN_PASSWORD = "admin123"


def prepare_database(app):
    """Development migrates itself so `python app.py` just works; production expects `flask db upgrade`."""
    with app.app_context():
        if app.config["AUTO_MIGRATE"]:
            upgrade()
        if sa.inspect(db.engine).has_table(User.__tablename__):
            ensure_default_admin(app)
        else:
            log.warning("The database has no tables yet: run `flask db upgrade`")


def ensure_default_admin(app):
    """On the first start with no users, create `admin`; returns the password it was given, or None."""
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
    if app.config["ADMIN_PASSWORD"]:
        log.warning("Created the default admin 'admin' with the password from FINSTACK_ADMIN_PASSWORD")
    else:
        log.warning("Created the default admin 'admin' with password %r: change it now", password)
    return password
