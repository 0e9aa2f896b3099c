"""helpdesk: in-ticket chat (one conversation per ticket; internal notes and AI-suggested replies on messages)

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-02

Reviewed by hand:
- `conversations` gains `ticket_id` (unique, CASCADE with its ticket); the kind check admits "ticket" and a new check
  ties the kind to `ticket_id` as the existing one ties "task" to `task_id`. SQLite cannot alter constraints in
  place, so `conversations` is rebuilt in batch mode; `tickets` and `tasks` are not touched (rebuilding them would
  drop their search triggers).
- Every existing ticket gets its conversation, created by its requester at the ticket's creation time, in one
  INSERT … SELECT (ids from the database: gen_random_uuid() on PostgreSQL, 16 random bytes in hex on SQLite, the
  form sa.Uuid stores there).
- `messages` gains `internal` and `is_ai`, NOT NULL with a false server default so existing rows need no update;
  plain ADD COLUMN works on both databases.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD_KIND = "kind IN ('direct', 'group', 'task')"
NEW_KIND = "kind IN ('direct', 'group', 'task', 'ticket')"
TICKET_ID = "(kind = 'ticket' AND ticket_id IS NOT NULL) OR (kind <> 'ticket' AND ticket_id IS NULL)"
NEW_ID = {"postgresql": "gen_random_uuid()", "sqlite": "lower(hex(randomblob(16)))"}


def upgrade():
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("ticket_id", sa.Uuid(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_conversations_ticket_id"), ["ticket_id"])
        batch_op.create_foreign_key(
            op.f("fk_conversations_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_constraint(op.f("ck_conversations_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_conversations_kind"), NEW_KIND)
        batch_op.create_check_constraint(op.f("ck_conversations_ticket_id"), TICKET_ID)
    new_id = NEW_ID[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO conversations (id, kind, ticket_id, created_by, created_at, updated_at) "
        f"SELECT {new_id}, 'ticket', tickets.id, tickets.requester_id, tickets.created_at, tickets.created_at "
        "FROM tickets WHERE NOT EXISTS (SELECT 1 FROM conversations WHERE conversations.ticket_id = tickets.id)"
    )
    op.add_column("messages", sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("messages", sa.Column("is_ai", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    op.drop_column("messages", "is_ai")
    op.drop_column("messages", "internal")
    ticket_threads = "SELECT id FROM conversations WHERE kind = 'ticket'"
    for table in ("messages", "chat_attachments", "conversation_members"):
        op.execute(f"DELETE FROM {table} WHERE conversation_id IN ({ticket_threads})")
    op.execute("DELETE FROM conversations WHERE kind = 'ticket'")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_constraint(op.f("ck_conversations_ticket_id"), type_="check")
        batch_op.drop_constraint(op.f("ck_conversations_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_conversations_kind"), OLD_KIND)
        batch_op.drop_constraint(op.f("fk_conversations_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_constraint(op.f("uq_conversations_ticket_id"), type_="unique")
        batch_op.drop_column("ticket_id")
