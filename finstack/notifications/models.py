import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

NOTIFICATION_TYPES = (
    "task_assigned",
    "task_status_changed",
    "task_commented",
    "mentioned",
    "attachment_added",
    "task_overdue",
    "task_reminder",
    "ticket_created",
    "ticket_assigned",
    "ticket_status_changed",
    "ticket_breached",
    "ticket_replied",
    "misuse_warning",
    "webhook_disabled",
    "chat_message",
)
DELIVERY_MODES = ("immediate", "hourly", "daily", "off")


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        # The inbox, newest first, and the `since` catch-up cursor.
        sa.Index("ix_notifications_user_id_created_at", "user_id", "created_at", "id"),
        # The unread badge.
        sa.Index("ix_notifications_user_id_is_read", "user_id", "is_read"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str] = mapped_column(sa.String(1000))
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    is_read: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # How many notifications this row stands for: repeats within NOTIFICATION_COLLAPSE_SECONDS update it.
    count: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[object | None] = mapped_column(UTCDateTime)


class EmailPreference(db.Model):
    """A user's choice to get (or not) e-mail for one notification type. No row: the default (on)."""

    __tablename__ = "email_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean)


class NotificationSettings(db.Model):
    """A user's delivery choices. No row: the defaults (immediate e-mail, no notifications for group chats)."""

    __tablename__ = "notification_settings"
    __table_args__ = (sa.CheckConstraint(sa.column("delivery_mode").in_(DELIVERY_MODES), name="delivery_mode"),)

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    delivery_mode: Mapped[str] = mapped_column(sa.String(16), default="immediate")
    chat_group: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The end of the period the last digest covered: the next one gathers the notifications created after it.
    last_digest_at: Mapped[object | None] = mapped_column(UTCDateTime)
