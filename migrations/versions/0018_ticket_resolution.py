"""helpdesk: tickets.resolution (what solved it), searched with the ticket

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

Reviewed by hand. One nullable column, added with ADD COLUMN on both databases: never a batch rebuild of `tickets`,
which on SQLite would drop the search triggers of migration 0014 with the old table.

The resolution joins the ticket's search objects (weight C, between the title's A and the description's D), so that
`helpdesk/ask`, a ticket's suggestions and `GET /api/tickets?q=` find a ticket by the words of its answer too.
PostgreSQL: the trigger function is replaced and the trigger fires on `resolution` too; no row needs recomputing,
every resolution is null. SQLite: `ticket_search` gains the column; its FTS5 table cannot gain one, so it is dropped
and created again with three columns (with the triggers that feed it) and rebuilt from `ticket_search`; the two
triggers on `tickets` that copy the text are created again with the resolution. The downgrade restores 0014's objects.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _postgresql_search(columns):
    """The trigger function and trigger of `tickets.search_vector` over `columns`: (name, weight) pairs."""
    vector = "\n            || ".join(
        f"setweight(to_tsvector('english', coalesce(NEW.{name}, '')), '{weight}')" for name, weight in columns
    )
    names = ", ".join(name for name, _ in columns)
    return (
        f"""
        CREATE OR REPLACE FUNCTION tickets_search_vector_set() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.search_vector := {vector};
            RETURN NEW;
        END
        $$
        """,
        "DROP TRIGGER tickets_search_vector ON tickets",
        f"""
        CREATE TRIGGER tickets_search_vector BEFORE INSERT OR UPDATE OF {names} ON tickets
        FOR EACH ROW EXECUTE FUNCTION tickets_search_vector_set()
        """,
    )


def _sqlite_search(columns):
    """The FTS5 table over `ticket_search`'s `columns`, the triggers feeding it, and the triggers on `tickets`
    copying those columns into `ticket_search`; the FTS5 index rebuilt from `ticket_search`."""
    names = ", ".join(columns)
    new = ", ".join(f"new.{name}" for name in columns)
    old = ", ".join(f"old.{name}" for name in columns)
    assignments = ", ".join(f"{name} = new.{name}" for name in columns)
    return (
        f"""
        CREATE VIRTUAL TABLE ticket_search_fts USING fts5(
            {names},
            content='ticket_search', content_rowid='id', tokenize='porter unicode61 remove_diacritics 0'
        )
        """,
        f"""
        CREATE TRIGGER ticket_search_fts_insert AFTER INSERT ON ticket_search BEGIN
            INSERT INTO ticket_search_fts (rowid, {names}) VALUES (new.id, {new});
        END
        """,
        f"""
        CREATE TRIGGER ticket_search_fts_delete AFTER DELETE ON ticket_search BEGIN
            INSERT INTO ticket_search_fts (ticket_search_fts, rowid, {names}) VALUES ('delete', old.id, {old});
        END
        """,
        f"""
        CREATE TRIGGER ticket_search_fts_update AFTER UPDATE ON ticket_search BEGIN
            INSERT INTO ticket_search_fts (ticket_search_fts, rowid, {names}) VALUES ('delete', old.id, {old});
            INSERT INTO ticket_search_fts (rowid, {names}) VALUES (new.id, {new});
        END
        """,
        "INSERT INTO ticket_search_fts (ticket_search_fts) VALUES ('rebuild')",
        f"""
        CREATE TRIGGER ticket_search_ticket_insert AFTER INSERT ON tickets BEGIN
            INSERT INTO ticket_search (ticket_id, {names}) VALUES (new.id, {new});
        END
        """,
        f"""
        CREATE TRIGGER ticket_search_ticket_update AFTER UPDATE OF {names} ON tickets BEGIN
            UPDATE ticket_search SET {assignments} WHERE ticket_id = new.id;
        END
        """,
    )


SQLITE_DROP_SEARCH = (
    "DROP TRIGGER ticket_search_ticket_update",
    "DROP TRIGGER ticket_search_ticket_insert",
    "DROP TRIGGER ticket_search_fts_update",
    "DROP TRIGGER ticket_search_fts_delete",
    "DROP TRIGGER ticket_search_fts_insert",
    "DROP TABLE ticket_search_fts",
)


def _run(statements):
    for statement in statements:
        op.execute(statement)


def _on_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.add_column("tickets", sa.Column("resolution", sa.Text(), nullable=True))
    if _on_postgresql():
        _run(_postgresql_search((("title", "A"), ("description", "D"), ("resolution", "C"))))
    else:
        _run(SQLITE_DROP_SEARCH)
        op.execute("ALTER TABLE ticket_search ADD COLUMN resolution TEXT")
        _run(_sqlite_search(("title", "description", "resolution")))


def downgrade():
    if _on_postgresql():
        _run(_postgresql_search((("title", "A"), ("description", "D"))))
        op.execute("UPDATE tickets SET title = title WHERE resolution IS NOT NULL")  # their vectors, without it
    else:
        _run(SQLITE_DROP_SEARCH)
        op.execute("ALTER TABLE ticket_search DROP COLUMN resolution")
        _run(_sqlite_search(("title", "description")))
    # Plain ALTER TABLE … DROP COLUMN on both databases (SQLite ≥ 3.35): no trigger names the column any more.
    op.execute("ALTER TABLE tickets DROP COLUMN resolution")
