"""Fixtures: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set).

The schema is built once per session by running the Alembic migrations from empty, exactly as
`flask db upgrade` does; each test then starts from empty tables.
"""

import itertools
import os
import uuid

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_migrate import upgrade

from finstack import create_app
from finstack.extensions import db
from finstack.users import service as users

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_report_header(config):
    return f"database: {POSTGRES_URL or 'SQLite (set TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not POSTGRES_URL:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'finstack-test.db'}"
        _migrate(url)
        yield url
        return
    # A schema of its own per test session, so concurrent runs against one database never collide.
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(POSTGRES_URL)
    with admin_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url = url.render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin_engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def _migrate(url):
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture
def app_config(database_url, tmp_path):
    """Overrides for the app under test; a test may change them before using `app`."""
    return {
        "FINSTACK_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_sequence = itertools.count(1)

PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_user(app):
    """Create a user straight through the service; every keyword can be overridden."""

    def make(role="member", **fields):
        number = next(_sequence)
        values = {
            "username": f"user{number}",
            "email": f"user{number}@example.com",
            "password": PASSWORD,
            "full_name": f"User {number}",
            "role": role,
        }
        values.update(fields)
        return users.create_user(**values)

    return make


@pytest.fixture
def auth_headers(app):
    def headers(user, refresh=False):
        make_token = create_refresh_token if refresh else create_access_token
        return {"Authorization": f"Bearer {make_token(identity=str(user.id))}"}

    return headers


@pytest.fixture
def admin(make_user):
    return make_user(role="admin")


@pytest.fixture
def manager(make_user):
    return make_user(role="manager")


@pytest.fixture
def member(make_user):
    return make_user(role="member")
