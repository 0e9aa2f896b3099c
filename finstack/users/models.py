import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

ROLES = ("admin", "manager", "member")


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint(sa.column("role").in_(ROLES), name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Stored lower-cased, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    full_name: Mapped[str] = mapped_column(sa.String(120))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    role: Mapped[str] = mapped_column(sa.String(16), default="member")
    department: Mapped[str | None] = mapped_column(sa.String(64))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True, index=True)
    # Carried as the `ver` claim of every token; raising it ends every token issued before (credentials changed).
    token_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # IANA zone name (validated with zoneinfo): recurring tasks compute their next date in it.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def set_password(self, password, method):
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)

    @property
    def is_manager(self):
        """Managers and admins see and manage every task."""
        return self.role in ("admin", "manager")

    def __repr__(self):
        return f"<User {self.username}>"


# Usernames are unique whatever their case ("Alice" and "alice" are one account); display keeps the case given.
sa.Index("uq_users_username_lower", sa.func.lower(User.username), unique=True)
