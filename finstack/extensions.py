"""Extensions, created once and bound to an app in `create_app`."""

from flask import current_app
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from finstack.core.schemas import ErrorSchema

# Stable constraint names so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class FinStackApi(Api):
    """flask-smorest's Api, documenting errors with FinStack's one error shape."""

    ERROR_SCHEMA = ErrorSchema


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
jwt = JWTManager()
cors = CORS()
api = FinStackApi()
socketio = SocketIO()


def _default_limit_key():
    from finstack.core.ratelimit import user_or_ip  # it imports the audit log, which imports this module

    return user_or_ip()


# Limits and storage come from the app's configuration (finstack.core.ratelimit.init_app). The default limit is one
# budget across every endpoint (login and the others keep their own limits on top), per signed-in user, else per
# client address.
limiter = Limiter(
    key_func=_default_limit_key,
    application_limits=[lambda: current_app.config["DEFAULT_RATE_LIMIT"]],
    headers_enabled=False,
)
