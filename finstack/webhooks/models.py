import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

# The events a webhook may subscribe to: the live events of the same names (README "Webhooks"); `*` is every one.
EVENTS = (
    "task_created",
    "task_updated",
    "task_deleted",
    "task_restored",
    "task_moved",
    "project_created",
    "project_updated",
    "project_deleted",
    "ticket_created",
    "ticket_updated",
)
ALL_EVENTS = "*"
DELIVERY_STATUSES = ("pending", "delivered", "failed")
URL_MAX_LENGTH = 2000


class Webhook(db.Model):
    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(sa.String(URL_MAX_LENGTH))
    secret: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Deliveries in a row that failed for good (every retry spent); a delivered one resets it.
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list["WebhookEvent"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="WebhookEvent.event"
    )

    @property
    def events(self):
        return [subscription.event for subscription in self.subscriptions]


class WebhookEvent(db.Model):
    """One event a webhook subscribes to (a row per event, so publishing finds the subscribers in SQL)."""

    __tablename__ = "webhook_events"
    __table_args__ = (sa.Index("ix_webhook_events_event", "event"),)

    webhook_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class WebhookDelivery(db.Model):
    """One event sent to one webhook: its body (the same bytes on every attempt) and its latest attempt's outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(DELIVERY_STATUSES), name="status"),
        sa.Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    webhook_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    event: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(sa.Integer)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[object | None] = mapped_column(UTCDateTime)
