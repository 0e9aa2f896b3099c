"""Chat: conversations (direct, group, task threads, ticket threads), their members, messages and chat attachments.

Ordering of messages is `(created_at, id)` everywhere: cursors, unread counts and read markers compare
that pair, and `send_message` makes `created_at` strictly increase within a conversation in commit order.
"""

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

KINDS = ("direct", "group", "task", "ticket")
MEMBER_KINDS = ("direct", "group")  # kinds whose access comes from conversation_members rows
MAX_CONTENT = 5000
MAX_NAME = 100
MAX_CLIENT_ID = 64


def direct_key_for(user_id, other_id):
    """The one key a pair of users shares whoever starts the DM: their ids, sorted."""
    return ":".join(sorted((str(user_id), str(other_id))))


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(KINDS), name="kind"),
        # A DM is known by its pair, a task thread by its task, a ticket thread by its ticket; nothing else carries one.
        sa.CheckConstraint(
            "(kind = 'direct' AND direct_key IS NOT NULL) OR (kind <> 'direct' AND direct_key IS NULL)",
            name="direct_key",
        ),
        sa.CheckConstraint(
            "(kind = 'task' AND task_id IS NOT NULL) OR (kind <> 'task' AND task_id IS NULL)",
            name="task_id",
        ),
        sa.CheckConstraint(
            "(kind = 'ticket' AND ticket_id IS NOT NULL) OR (kind <> 'ticket' AND ticket_id IS NULL)",
            name="ticket_id",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(sa.String(8))
    name: Mapped[str | None] = mapped_column(sa.String(MAX_NAME))
    direct_key: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    # A ticket's conversation is created with the ticket (tickets.service.create_ticket) and goes with it.
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[object | None] = mapped_column(UTCDateTime)

    members = relationship(
        "ConversationMember",
        back_populates="conversation",
        order_by="ConversationMember.joined_at, ConversationMember.user_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    @property
    def is_group(self):
        return self.kind == "group"


class ConversationMember(db.Model):
    """A user's place in a conversation: membership for direct and group ones, plus the user's own state.

    For task threads (kind "task") access comes from `permissions.can_read_task`, for ticket threads (kind "ticket")
    from `permissions.can_read_ticket`, never from these rows; a row there only keeps that user's read marker and
    pin, created the first time they need one.
    """

    __tablename__ = "conversation_members"
    __table_args__ = (
        # "My conversations": the list, the rooms to join, the search scope.
        sa.Index("ix_conversation_members_user_id", "user_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    joined_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # The read marker: the last message read, as its (created_at, id) position. NULL: nothing read yet.
    last_read_message_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("messages.id", ondelete="SET NULL"))
    last_read_message_at: Mapped[object | None] = mapped_column(UTCDateTime)
    is_pinned: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    conversation = relationship("Conversation", back_populates="members")
    user = relationship("User", lazy="joined", innerjoin=True)


class ChatAttachment(db.Model):
    """A file uploaded into a conversation, then referenced by (at most) one message."""

    __tablename__ = "chat_attachments"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    uploaded_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    stored_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    uploader = relationship("User", foreign_keys=[uploaded_by], lazy="joined")


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # History pages, before/after cursors, the last message and unread counts per conversation.
        sa.Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at", "id"),
        # Pinned messages of a conversation.
        sa.Index("ix_messages_conversation_id_is_pinned", "conversation_id", "is_pinned", "pinned_at"),
        # A retried send (same client_id from the same sender) is stored once.
        sa.UniqueConstraint("sender_id", "client_id", name="uq_messages_sender_id_client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    content: Mapped[str] = mapped_column(sa.String(MAX_CONTENT), default="")
    client_id: Mapped[str | None] = mapped_column(sa.String(MAX_CLIENT_ID))
    attachment_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("chat_attachments.id", ondelete="SET NULL"), unique=True
    )
    is_pinned: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Ticket threads only: an agents' note the requester never sees (permissions.can_see_internal_notes).
    internal: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Sent by staff from a suggested reply (004's `isAI`).
    is_ai: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    pinned_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    pinned_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    sender = relationship("User", foreign_keys=[sender_id], lazy="joined", innerjoin=True)
    attachment = relationship("ChatAttachment", lazy="joined")
    conversation = relationship("Conversation", lazy="raise")

    @property
    def message_type(self):
        return "attachment" if self.attachment_id is not None else "text"
