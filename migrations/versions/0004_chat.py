"""chat: conversations (direct, group, task threads), members, messages, chat attachments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Reviewed by hand: plain SQLAlchemy types; everything cascades away with its conversation, and a task thread
with its task. New tables only, so no batch mode is needed for SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("direct_key", sa.String(length=80), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_message_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("kind IN ('direct', 'group', 'task')", name=op.f("ck_conversations_kind")),
        sa.CheckConstraint(
            "(kind = 'direct' AND direct_key IS NOT NULL) OR (kind <> 'direct' AND direct_key IS NULL)",
            name=op.f("ck_conversations_direct_key"),
        ),
        sa.CheckConstraint(
            "(kind = 'task' AND task_id IS NOT NULL) OR (kind <> 'task' AND task_id IS NULL)",
            name=op.f("ck_conversations_task_id"),
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_conversations_created_by_users")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_conversations_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("direct_key", name=op.f("uq_conversations_direct_key")),
        sa.UniqueConstraint("task_id", name=op.f("uq_conversations_task_id")),
    )

    op.create_table(
        "chat_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_chat_attachments_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"], name=op.f("fk_chat_attachments_uploaded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_attachments")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_chat_attachments_stored_name")),
    )
    op.create_index("ix_chat_attachments_conversation_id", "chat_attachments", ["conversation_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.String(length=5000), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("attachment_id", sa.Uuid(), nullable=True),
        sa.Column("is_pinned", sa.Boolean(), nullable=False),
        sa.Column("pinned_by", sa.Uuid(), nullable=True),
        sa.Column("pinned_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["chat_attachments.id"],
            name=op.f("fk_messages_attachment_id_chat_attachments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pinned_by"], ["users.id"], name=op.f("fk_messages_pinned_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name=op.f("fk_messages_sender_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("attachment_id", name=op.f("uq_messages_attachment_id")),
        sa.UniqueConstraint("sender_id", "client_id", name=op.f("uq_messages_sender_id_client_id")),
    )
    op.create_index("ix_messages_conversation_id_created_at", "messages", ["conversation_id", "created_at", "id"])
    op.create_index("ix_messages_conversation_id_is_pinned", "messages", ["conversation_id", "is_pinned", "pinned_at"])

    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("joined_at", TIMESTAMP, nullable=False),
        sa.Column("last_read_message_id", sa.Uuid(), nullable=True),
        sa.Column("last_read_message_at", TIMESTAMP, nullable=True),
        sa.Column("is_pinned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_members_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_read_message_id"],
            ["messages.id"],
            name=op.f("fk_conversation_members_last_read_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_conversation_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name=op.f("pk_conversation_members")),
    )
    op.create_index("ix_conversation_members_user_id", "conversation_members", ["user_id"])


def downgrade():
    op.drop_table("conversation_members")
    op.drop_table("messages")
    op.drop_table("chat_attachments")
    op.drop_table("conversations")
