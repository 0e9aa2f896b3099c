"""sessions: token version, refresh-token families, case-insensitive usernames, audit actor label

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Reviewed by hand: plain SQLAlchemy types. Existing users start at token_version 1, so tokens issued before this
upgrade (they carry no version, read as 0) stop working: everyone signs in again once. revoked_tokens is replaced by
token families and the version. Before the unique index on lower(username) is built, usernames that differ only in
case are looked for; the upgrade stops, naming them, if there are any. Columns are added and dropped with plain
ALTER TABLE (SQLite 3.35+), never by rebuilding `users`: with SQLite's foreign keys on, a rebuild cascades deletes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def _refuse_username_clashes():
    rows = op.get_bind().execute(
        sa.text(
            "SELECT username FROM users WHERE lower(username) IN "
            "(SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1) "
            "ORDER BY lower(username), username"
        )
    )
    clashes = {}
    for (username,) in rows:
        clashes.setdefault(username.lower(), []).append(username)
    if clashes:
        groups = "; ".join(", ".join(names) for names in clashes.values())
        raise RuntimeError(
            "Usernames must be unique regardless of case, and these differ only in case: "
            f"{groups}. Rename all but one of each group in SQL, e.g. "
            "`UPDATE users SET username = 'alice2' WHERE username = 'Alice';`, then run the upgrade again."
        )


def upgrade():
    _refuse_username_clashes()
    op.add_column("users", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE users SET token_version = 1")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)

    op.create_table(
        "token_families",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("current_jti", sa.String(length=64), nullable=False),
        sa.Column("previous_jti", sa.String(length=64), nullable=True),
        sa.Column("rotated_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_token_families_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_families")),
    )
    op.create_index("ix_token_families_user_id", "token_families", ["user_id"])

    op.drop_index("ix_revoked_tokens_user_id", table_name="revoked_tokens")
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")

    op.add_column("audit_logs", sa.Column("actor_label", sa.String(length=64), nullable=True))


def downgrade():
    op.drop_column("audit_logs", "actor_label")

    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("token_type", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_revoked_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    op.create_index("ix_revoked_tokens_user_id", "revoked_tokens", ["user_id"])

    op.drop_index("ix_token_families_user_id", table_name="token_families")
    op.drop_table("token_families")

    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_column("users", "token_version")
