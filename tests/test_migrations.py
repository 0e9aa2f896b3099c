"""The migrations build exactly the schema the models describe, from empty, and go back down cleanly."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from finstack import create_app
from finstack.extensions import db
from finstack.tasks.search import include_name


def _schema_differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        return compare_metadata(context, db.metadata)


def test_migrated_test_database_matches_models(app):
    # The session fixture built this database by upgrading from empty.
    assert _schema_differences(db.engine) == []


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
        assert _schema_differences(db.engine) == []
        db.engine.dispose()
