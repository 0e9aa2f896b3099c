import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

AGENT_ROLES = ("agent", "lead")
URGENCIES = ("low", "medium", "high", "critical")
# `held`: flagged by the content check, waiting for an admin to release (route) or reject it.
STATUSES = ("held", "rejected", "open", "assigned", "in_progress", "waiting_on_requester", "resolved", "closed")
# Statuses that count towards an agent's load and keep a ticket in its department's queue.
ACTIVE_STATUSES = ("open", "assigned", "in_progress", "waiting_on_requester")
# The departments every install has; `system_key` finds them whatever admins rename them to.
TRIAGE = "triage"


class Department(db.Model):
    __tablename__ = "departments"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    system_key: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DepartmentAgent(db.Model):
    __tablename__ = "department_agents"
    __table_args__ = (sa.CheckConstraint(sa.column("role").in_(AGENT_ROLES), name="role"),)

    department_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    added_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # Round robin among agents with equally few open tickets: the one assigned longest ago (never: first).
    last_assigned_at: Mapped[object | None] = mapped_column(UTCDateTime)

    user = relationship("User", lazy="joined", innerjoin=True)


class RoutingRule(db.Model):
    __tablename__ = "routing_rules"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    department_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("departments.id", ondelete="CASCADE"), index=True
    )
    keywords: Mapped[list] = mapped_column(sa.JSON, default=list)
    category: Mapped[str | None] = mapped_column(sa.String(50))
    priority: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BlockedTerm(db.Model):
    __tablename__ = "blocked_terms"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    term: Mapped[str] = mapped_column(sa.String(100), unique=True)  # stored lower-cased
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)


class TicketCounter(db.Model):
    """The last ticket number given; incremented in one UPDATE … RETURNING, which both databases serialise."""

    __tablename__ = "ticket_counters"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.Integer, default=0)


class Ticket(db.Model):
    __tablename__ = "tickets"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(STATUSES), name="status"),
        sa.CheckConstraint(sa.column("urgency").in_(URGENCIES), name="urgency"),
        sa.CheckConstraint("feedback_rating IS NULL OR feedback_rating BETWEEN 1 AND 5", name="feedback_rating"),
        sa.Index("ix_tickets_requester_id_created_at", "requester_id", "created_at"),
        sa.Index("ix_tickets_department_id_status", "department_id", "status"),
        sa.Index("ix_tickets_assignee_id_status", "assignee_id", "status"),
        # The list's sorts and its urgency filter with the default sort (newest first); the `breached` filter's
        # recorded breaches. PostgreSQL also has an index on the urgency sort's CASE (migration 0024).
        sa.Index("ix_tickets_created_at", "created_at"),
        sa.Index("ix_tickets_updated_at", "updated_at"),
        sa.Index("ix_tickets_urgency_created_at", "urgency", "created_at"),
        sa.Index("ix_tickets_first_response_breached_at", "first_response_breached_at"),
        sa.Index("ix_tickets_resolution_breached_at", "resolution_breached_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(sa.Integer, unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    urgency: Mapped[str] = mapped_column(sa.String(16))
    category: Mapped[str | None] = mapped_column(sa.String(50))
    status: Mapped[str] = mapped_column(sa.String(24))
    requester_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("departments.id"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    # The router's decision and why (`department`, `assignee`: reasons in words, plus the rule and terms matched).
    routing: Mapped[dict | None] = mapped_column(sa.JSON)
    misuse_flag: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    misuse_reasons: Mapped[list | None] = mapped_column(sa.JSON)
    feedback_rating: Mapped[int | None] = mapped_column(sa.Integer)
    feedback_comment: Mapped[str | None] = mapped_column(sa.Text)
    feedback_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # What solved it, given by staff when resolving; cleared on reopen. Searched with the ticket (migration 0018).
    resolution: Mapped[str | None] = mapped_column(sa.Text)
    resolved_at: Mapped[object | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # SLA clocks (`finstack/tickets/sla.py`): null while held. `sla_paused_at`: since when the ticket waits on its
    # requester; the `*_breached_at` columns say when a breach was recorded (by the sweep, or on a late response).
    first_response_due_at: Mapped[object | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[object | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[object | None] = mapped_column(UTCDateTime)
    sla_paused_at: Mapped[object | None] = mapped_column(UTCDateTime)
    first_response_breached_at: Mapped[object | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[object | None] = mapped_column(UTCDateTime)

    requester = relationship("User", foreign_keys=[requester_id], lazy="joined", innerjoin=True)
    assignee = relationship("User", foreign_keys=[assignee_id], lazy="joined")
    department = relationship(Department, lazy="joined")
    # Its in-ticket chat (chat.models.Conversation, kind "ticket"), created with it; one query per page of tickets.
    conversation = relationship("Conversation", uselist=False, lazy="selectin", passive_deletes=True)

    @property
    def reference(self):
        return f"TKT-{self.number:06d}"


def reference_in_sql(number):
    """PostgreSQL: `Ticket.reference` of a ticket `number` (at least six digits: `lpad` alone would cut longer ones)."""
    digits = sa.cast(number, sa.Text)
    return "TKT-" + sa.func.lpad(digits, sa.func.greatest(6, sa.func.length(digits)), "0", type_=sa.Text)


# The SLA sweep's scans: active tickets whose first-response or resolution target has passed.
sa.Index("ix_tickets_status_first_response_due_at", Ticket.status, Ticket.first_response_due_at)
sa.Index("ix_tickets_status_resolution_due_at", Ticket.status, Ticket.resolution_due_at)
# The sweep's claims (migration 0030): only the active tickets whose breach is not recorded yet, in due order, so a
# claim does not walk past those the claims before it stamped (nor, for the resolution, scan the table).
_unrecorded = {
    "first_response": sa.and_(
        Ticket.first_response_breached_at.is_(None),
        Ticket.first_responded_at.is_(None),
        Ticket.status.in_(ACTIVE_STATUSES),
    ),
    "resolution": sa.and_(Ticket.resolution_breached_at.is_(None), Ticket.status.in_(ACTIVE_STATUSES)),
}
for _kind, _where in _unrecorded.items():
    sa.Index(
        f"ix_tickets_unrecorded_{_kind}",
        getattr(Ticket, f"{_kind}_due_at"),
        postgresql_where=_where,
        sqlite_where=_where,
    )


ARTICLE_STATUSES = ("draft", "published")


class KbArticle(db.Model):
    """A knowledge-base article; its search objects (migration 0014) are kept by triggers, see tickets/kb.py."""

    __tablename__ = "kb_articles"
    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(ARTICLE_STATUSES), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    department = relationship(Department, lazy="joined")
    author = relationship("User", lazy="joined")


MISUSE_PATTERNS = ("high_volume", "duplicate_titles", "short_descriptions")
MISUSE_ACTIONS = ("none", "warn", "suspend")


class MisuseReport(db.Model):
    """What the misuse sweep found about one requester on one (UTC) day: at most one report per user per day."""

    __tablename__ = "misuse_reports"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "day", name="uq_misuse_reports_user_id_day"),
        sa.CheckConstraint(sa.column("action").in_(MISUSE_ACTIONS), name="action"),
        sa.Index("ix_misuse_reports_day", "day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[object] = mapped_column(sa.Date)
    window_hours: Mapped[int] = mapped_column(sa.Integer)
    ticket_count: Mapped[int] = mapped_column(sa.Integer)
    # The pattern names found (MISUSE_PATTERNS), and per pattern the ticket numbers and figures behind it.
    patterns: Mapped[list] = mapped_column(sa.JSON)
    evidence: Mapped[dict] = mapped_column(sa.JSON)
    reviewed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    action: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user = relationship("User", foreign_keys=[user_id], lazy="joined", innerjoin=True)
    reviewer = relationship("User", foreign_keys=[reviewed_by], lazy="joined")
