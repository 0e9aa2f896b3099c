import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

PROJECT_STATUSES = ("active", "archived")
VISIBILITIES = ("open", "private")
PROJECT_ROLES = ("manager", "member", "viewer")


class Project(db.Model):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(PROJECT_STATUSES), name="status"),
        sa.CheckConstraint(sa.column("visibility").in_(VISIBILITIES), name="visibility"),
        sa.CheckConstraint("due_date IS NULL OR start_date IS NULL OR due_date >= start_date", name="dates"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    # Stored upper-cased, so the unique constraint is case-insensitive.
    key: Mapped[str] = mapped_column(sa.String(10), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    visibility: Mapped[str] = mapped_column(sa.String(16), default="open")
    team_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    start_date: Mapped[object | None] = mapped_column(sa.Date)
    due_date: Mapped[object | None] = mapped_column(sa.Date)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProjectMember(db.Model):
    """An explicit membership; it wins over the role a project's team gives the same user."""

    __tablename__ = "project_members"
    __table_args__ = (sa.CheckConstraint(sa.column("role").in_(PROJECT_ROLES), name="role"),)

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(16), default="member")
    added_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User", lazy="joined", innerjoin=True)
