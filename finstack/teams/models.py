import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

TEAM_ROLES = ("member", "manager")


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TeamMember(db.Model):
    __tablename__ = "team_members"
    __table_args__ = (sa.CheckConstraint(sa.column("role").in_(TEAM_ROLES), name="role"),)

    team_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(16), default="member")
    joined_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User", lazy="joined", innerjoin=True)


# Counted in SQL with the team's row, for the list and the detail alike.
Team.member_count = column_property(
    sa.select(sa.func.count()).where(TeamMember.team_id == Team.id).correlate_except(TeamMember).scalar_subquery()
)
