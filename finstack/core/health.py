"""`GET /api/health`: is the process up, and can it reach its database?"""

import logging

import sqlalchemy as sa
from flask import current_app
from marshmallow import fields
from sqlalchemy.exc import SQLAlchemyError

from finstack.core.blueprint import ApiBlueprint
from finstack.core.schemas import BaseSchema
from finstack.extensions import db

log = logging.getLogger(__name__)

bp = ApiBlueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")


class HealthOut(BaseSchema):
    status = fields.String(metadata={"example": "healthy"})
    version = fields.String()
    database = fields.String(metadata={"example": "ok"})


@bp.get("/health")
@bp.response(200, HealthOut)
@bp.alt_response(503, schema=HealthOut, description="The database cannot be reached")
def health():
    version = current_app.config["VERSION"]
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("Health check could not reach the database")
        return {"status": "unhealthy", "version": version, "database": "unreachable"}, 503
    return {"status": "healthy", "version": version, "database": "ok"}
