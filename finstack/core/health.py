"""`GET /api/health`: is the process up, can it reach its database, and is the schema at the latest migration?"""

import logging
from functools import cache

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import current_app
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError

from finstack.core.blueprint import ApiBlueprint
from finstack.core.schemas import BaseSchema
from finstack.extensions import db

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"

bp = ApiBlueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")


class MigrationsOut(BaseSchema):
    current = fields.String(allow_none=True, metadata={"example": "0004"})
    head = fields.String(metadata={"example": "0004"})


class HealthOut(BaseSchema):
    status = fields.String(metadata={"example": "healthy"})
    version = fields.String()
    database = fields.String(metadata={"example": "ok", "description": "ok, unreachable or outdated"})
    migrations = fields.Nested(MigrationsOut, allow_none=True)


@cache
def script_head(directory):
    """The latest migration among the scripts shipped with this code (read once per process)."""
    config = Config()
    config.set_main_option("script_location", directory)
    return ",".join(sorted(ScriptDirectory.from_config(config).get_heads()))


def database_revision():
    """The revision the database is stamped with (None when it was never migrated)."""
    connection = db.session.connection()
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    revisions = connection.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return ",".join(sorted(revisions)) or None


@bp.get("/health")
@bp.response(200, HealthOut)
@bp.alt_response(503, schema=HealthOut, description="The database cannot be reached or its schema is not up to date")
def health():
    version = current_app.config["VERSION"]
    head = script_head(current_app.extensions["migrate"].directory)
    try:
        current = database_revision()
    except SQLAlchemyError:
        log.exception("Health check could not reach the database")
        return {"status": "unhealthy", "version": version, "database": "unreachable", "migrations": None}, 503
    finally:
        db.session.rollback()  # end the read-only transaction
    migrations = {"current": current, "head": head}
    if current != head:
        return {"status": "unhealthy", "version": version, "database": "outdated", "migrations": migrations}, 503
    return {"status": "healthy", "version": version, "database": "ok", "migrations": migrations}
