"""knowledge base: kb_articles, and word search over articles and tickets (PostgreSQL tsvector + GIN, SQLite FTS5)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Reviewed by hand. A new table (kb_articles: its department may go, SET NULL; its author too) and the search objects
of articles (title, tags, body) and tickets (title, description), built as migration 0010 builds the tasks' ones and
for the same reasons: database triggers keep them right on every write, and they are not in the models
(`finstack.tasks.search.include_name` hides them from Alembic's comparison). Configuration 'english' (stemming and
stop words: the text searched is questions in sentences), SQLite's tokenizer `porter` to match.

PostgreSQL: `kb_articles.search_vector` (A title, B tags, D body) and `tickets.search_vector` (A title, D description),
set by BEFORE triggers, each with a GIN index.

SQLite: `kb_article_search` and `ticket_search` (integer key and a copy of the text) are the external content of the
FTS5 tables `kb_article_search_fts` and `ticket_search_fts`; triggers on the base tables keep the copies right,
triggers on the copies keep the FTS indexes right. Caution: a later batch migration that rebuilds `tickets` or
`kb_articles` on SQLite drops their triggers with the old table and must create them again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)

POSTGRESQL_UPGRADE = (
    "ALTER TABLE kb_articles ADD COLUMN search_vector tsvector",
    """
    CREATE FUNCTION kb_articles_search_vector_set() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
            || setweight(to_tsvector('english', coalesce(
                   (SELECT string_agg(tag, ' ') FROM json_array_elements_text(NEW.tags) AS tag), '')), 'B')
            || setweight(to_tsvector('english', coalesce(NEW.body, '')), 'D');
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER kb_articles_search_vector BEFORE INSERT OR UPDATE OF title, tags, body ON kb_articles
    FOR EACH ROW EXECUTE FUNCTION kb_articles_search_vector_set()
    """,
    "CREATE INDEX ix_kb_articles_search_vector ON kb_articles USING gin (search_vector)",
    "ALTER TABLE tickets ADD COLUMN search_vector tsvector",
    """
    CREATE FUNCTION tickets_search_vector_set() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
            || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'D');
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER tickets_search_vector BEFORE INSERT OR UPDATE OF title, description ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_search_vector_set()
    """,
    "UPDATE tickets SET title = title",
    "CREATE INDEX ix_tickets_search_vector ON tickets USING gin (search_vector)",
)

POSTGRESQL_DOWNGRADE = (
    "DROP INDEX ix_tickets_search_vector",
    "DROP TRIGGER tickets_search_vector ON tickets",
    "DROP FUNCTION tickets_search_vector_set()",
    "ALTER TABLE tickets DROP COLUMN search_vector",
    "DROP TRIGGER kb_articles_search_vector ON kb_articles",
    "DROP FUNCTION kb_articles_search_vector_set()",
)

SQLITE_UPGRADE = (
    """
    CREATE TABLE kb_article_search (
        id INTEGER PRIMARY KEY,
        article_id CHAR(32) NOT NULL UNIQUE,
        title TEXT,
        tags TEXT,
        body TEXT
    )
    """,
    """
    CREATE VIRTUAL TABLE kb_article_search_fts USING fts5(
        title, tags, body,
        content='kb_article_search', content_rowid='id', tokenize='porter unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER kb_article_search_fts_insert AFTER INSERT ON kb_article_search BEGIN
        INSERT INTO kb_article_search_fts (rowid, title, tags, body) VALUES (new.id, new.title, new.tags, new.body);
    END
    """,
    """
    CREATE TRIGGER kb_article_search_fts_delete AFTER DELETE ON kb_article_search BEGIN
        INSERT INTO kb_article_search_fts (kb_article_search_fts, rowid, title, tags, body)
        VALUES ('delete', old.id, old.title, old.tags, old.body);
    END
    """,
    """
    CREATE TRIGGER kb_article_search_fts_update AFTER UPDATE ON kb_article_search BEGIN
        INSERT INTO kb_article_search_fts (kb_article_search_fts, rowid, title, tags, body)
        VALUES ('delete', old.id, old.title, old.tags, old.body);
        INSERT INTO kb_article_search_fts (rowid, title, tags, body) VALUES (new.id, new.title, new.tags, new.body);
    END
    """,
    """
    CREATE TRIGGER kb_article_search_article_insert AFTER INSERT ON kb_articles BEGIN
        INSERT INTO kb_article_search (article_id, title, tags, body)
        VALUES (new.id, new.title, (SELECT group_concat(value, ' ') FROM json_each(new.tags)), new.body);
    END
    """,
    """
    CREATE TRIGGER kb_article_search_article_update AFTER UPDATE OF title, tags, body ON kb_articles BEGIN
        UPDATE kb_article_search
        SET title = new.title, tags = (SELECT group_concat(value, ' ') FROM json_each(new.tags)), body = new.body
        WHERE article_id = new.id;
    END
    """,
    """
    CREATE TRIGGER kb_article_search_article_delete AFTER DELETE ON kb_articles BEGIN
        DELETE FROM kb_article_search WHERE article_id = old.id;
    END
    """,
    """
    CREATE TABLE ticket_search (
        id INTEGER PRIMARY KEY,
        ticket_id CHAR(32) NOT NULL UNIQUE,
        title TEXT,
        description TEXT
    )
    """,
    """
    CREATE VIRTUAL TABLE ticket_search_fts USING fts5(
        title, description,
        content='ticket_search', content_rowid='id', tokenize='porter unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER ticket_search_fts_insert AFTER INSERT ON ticket_search BEGIN
        INSERT INTO ticket_search_fts (rowid, title, description) VALUES (new.id, new.title, new.description);
    END
    """,
    """
    CREATE TRIGGER ticket_search_fts_delete AFTER DELETE ON ticket_search BEGIN
        INSERT INTO ticket_search_fts (ticket_search_fts, rowid, title, description)
        VALUES ('delete', old.id, old.title, old.description);
    END
    """,
    """
    CREATE TRIGGER ticket_search_fts_update AFTER UPDATE ON ticket_search BEGIN
        INSERT INTO ticket_search_fts (ticket_search_fts, rowid, title, description)
        VALUES ('delete', old.id, old.title, old.description);
        INSERT INTO ticket_search_fts (rowid, title, description) VALUES (new.id, new.title, new.description);
    END
    """,
    "INSERT INTO ticket_search (ticket_id, title, description) SELECT id, title, description FROM tickets",
    """
    CREATE TRIGGER ticket_search_ticket_insert AFTER INSERT ON tickets BEGIN
        INSERT INTO ticket_search (ticket_id, title, description) VALUES (new.id, new.title, new.description);
    END
    """,
    """
    CREATE TRIGGER ticket_search_ticket_update AFTER UPDATE OF title, description ON tickets BEGIN
        UPDATE ticket_search SET title = new.title, description = new.description WHERE ticket_id = new.id;
    END
    """,
    """
    CREATE TRIGGER ticket_search_ticket_delete AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_search WHERE ticket_id = old.id;
    END
    """,
)

SQLITE_DOWNGRADE = (
    "DROP TRIGGER ticket_search_ticket_delete",
    "DROP TRIGGER ticket_search_ticket_update",
    "DROP TRIGGER ticket_search_ticket_insert",
    "DROP TABLE ticket_search_fts",
    "DROP TABLE ticket_search",
    "DROP TABLE kb_article_search_fts",
    "DROP TABLE kb_article_search",
)


def _run(statements):
    for statement in statements:
        op.execute(statement)


def _on_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("status IN ('draft', 'published')", name=op.f("ck_kb_articles_status")),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_kb_articles_department_id_departments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_kb_articles_author_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    op.create_index("ix_kb_articles_status", "kb_articles", ["status"])
    op.create_index("ix_kb_articles_department_id", "kb_articles", ["department_id"])
    _run(POSTGRESQL_UPGRADE if _on_postgresql() else SQLITE_UPGRADE)


def downgrade():
    _run(POSTGRESQL_DOWNGRADE if _on_postgresql() else SQLITE_DOWNGRADE)
    op.drop_table("kb_articles")
