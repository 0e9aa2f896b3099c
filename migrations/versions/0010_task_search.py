"""task word search: tasks.search_vector + GIN index (PostgreSQL), task_search + FTS5 table (SQLite)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Reviewed by hand. The search document of a task is its entity_name, task_type, note and tags; tags live in
task_tags, so no generated column can see them: database triggers keep the document right on every write (the
service, bulk UPDATEs, the CLI, cascades), and neither engine's objects are in the models (finstack/tasks/search.py
tells Alembic's comparison to skip them).

PostgreSQL: `tasks.search_vector` (tsvector, 'simple' configuration; weights A entity_name, B task_type and tags, D
note) with a GIN index; a BEFORE trigger sets it when a task is inserted or one of its text columns is in an UPDATE's
SET list, and statement-level triggers on task_tags (transition tables) recompute it for the tasks whose tags changed.

SQLite: `task_search` (integer key, since the rowid of `tasks` may change on VACUUM; a copy of the searched text)
is the external content of the FTS5 table `task_search_fts`; triggers on tasks and task_tags keep task_search right,
triggers on task_search keep the FTS index right. Caution: a later batch migration that rebuilds `tasks` on SQLite
drops the triggers on tasks with the old table, and must create them again.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

POSTGRESQL_UPGRADE = (
    "ALTER TABLE tasks ADD COLUMN search_vector tsvector",
    """
    CREATE FUNCTION task_search_document(uuid, text, text, text) RETURNS tsvector
    LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('simple', coalesce($2, '')), 'A')
            || setweight(to_tsvector('simple', coalesce($3, '')), 'B')
            || setweight(to_tsvector('simple', coalesce(
                   (SELECT string_agg(tag, ' ') FROM task_tags WHERE task_tags.task_id = $1), '')), 'B')
            || setweight(to_tsvector('simple', coalesce($4, '')), 'D')
    $$
    """,
    """
    CREATE FUNCTION tasks_search_vector_set() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := task_search_document(NEW.id, NEW.entity_name, NEW.task_type, NEW.note);
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER tasks_search_vector BEFORE INSERT OR UPDATE OF entity_name, task_type, note ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_search_vector_set()
    """,
    """
    CREATE FUNCTION task_tags_search_vector_set() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE tasks SET search_vector = task_search_document(id, entity_name, task_type, note)
        WHERE id IN (SELECT task_id FROM changed_tags);
        RETURN NULL;
    END
    $$
    """,
    # A transition table belongs to one event, hence one trigger per event (and two for UPDATE: old and new task).
    """
    CREATE TRIGGER task_tags_search_insert AFTER INSERT ON task_tags REFERENCING NEW TABLE AS changed_tags
    FOR EACH STATEMENT EXECUTE FUNCTION task_tags_search_vector_set()
    """,
    """
    CREATE TRIGGER task_tags_search_delete AFTER DELETE ON task_tags REFERENCING OLD TABLE AS changed_tags
    FOR EACH STATEMENT EXECUTE FUNCTION task_tags_search_vector_set()
    """,
    """
    CREATE TRIGGER task_tags_search_update_old AFTER UPDATE ON task_tags REFERENCING OLD TABLE AS changed_tags
    FOR EACH STATEMENT EXECUTE FUNCTION task_tags_search_vector_set()
    """,
    """
    CREATE TRIGGER task_tags_search_update_new AFTER UPDATE ON task_tags REFERENCING NEW TABLE AS changed_tags
    FOR EACH STATEMENT EXECUTE FUNCTION task_tags_search_vector_set()
    """,
    "UPDATE tasks SET search_vector = task_search_document(id, entity_name, task_type, note)",
    "CREATE INDEX ix_tasks_search_vector ON tasks USING gin (search_vector)",
)

POSTGRESQL_DOWNGRADE = (
    "DROP TRIGGER task_tags_search_update_new ON task_tags",
    "DROP TRIGGER task_tags_search_update_old ON task_tags",
    "DROP TRIGGER task_tags_search_delete ON task_tags",
    "DROP TRIGGER task_tags_search_insert ON task_tags",
    "DROP FUNCTION task_tags_search_vector_set()",
    "DROP TRIGGER tasks_search_vector ON tasks",
    "DROP FUNCTION tasks_search_vector_set()",
    "DROP FUNCTION task_search_document(uuid, text, text, text)",
    "DROP INDEX ix_tasks_search_vector",
    "ALTER TABLE tasks DROP COLUMN search_vector",
)

TAGS_OF_NEW = "(SELECT group_concat(tag, ' ') FROM task_tags WHERE task_tags.task_id = new.task_id)"
TAGS_OF_OLD = "(SELECT group_concat(tag, ' ') FROM task_tags WHERE task_tags.task_id = old.task_id)"

SQLITE_UPGRADE = (
    """
    CREATE TABLE task_search (
        id INTEGER PRIMARY KEY,
        task_id CHAR(32) NOT NULL UNIQUE,
        entity_name TEXT,
        task_type TEXT,
        note TEXT,
        tags TEXT
    )
    """,
    """
    CREATE VIRTUAL TABLE task_search_fts USING fts5(
        entity_name, task_type, note, tags,
        content='task_search', content_rowid='id', tokenize='unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER task_search_fts_insert AFTER INSERT ON task_search BEGIN
        INSERT INTO task_search_fts (rowid, entity_name, task_type, note, tags)
        VALUES (new.id, new.entity_name, new.task_type, new.note, new.tags);
    END
    """,
    """
    CREATE TRIGGER task_search_fts_delete AFTER DELETE ON task_search BEGIN
        INSERT INTO task_search_fts (task_search_fts, rowid, entity_name, task_type, note, tags)
        VALUES ('delete', old.id, old.entity_name, old.task_type, old.note, old.tags);
    END
    """,
    """
    CREATE TRIGGER task_search_fts_update AFTER UPDATE ON task_search BEGIN
        INSERT INTO task_search_fts (task_search_fts, rowid, entity_name, task_type, note, tags)
        VALUES ('delete', old.id, old.entity_name, old.task_type, old.note, old.tags);
        INSERT INTO task_search_fts (rowid, entity_name, task_type, note, tags)
        VALUES (new.id, new.entity_name, new.task_type, new.note, new.tags);
    END
    """,
    """
    INSERT INTO task_search (task_id, entity_name, task_type, note, tags)
    SELECT id, entity_name, task_type, note,
           (SELECT group_concat(tag, ' ') FROM task_tags WHERE task_tags.task_id = tasks.id)
    FROM tasks
    """,
    """
    CREATE TRIGGER task_search_task_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO task_search (task_id, entity_name, task_type, note, tags)
        VALUES (new.id, new.entity_name, new.task_type, new.note,
                (SELECT group_concat(tag, ' ') FROM task_tags WHERE task_tags.task_id = new.id));
    END
    """,
    """
    CREATE TRIGGER task_search_task_update AFTER UPDATE OF entity_name, task_type, note ON tasks BEGIN
        UPDATE task_search SET entity_name = new.entity_name, task_type = new.task_type, note = new.note
        WHERE task_id = new.id;
    END
    """,
    """
    CREATE TRIGGER task_search_task_delete AFTER DELETE ON tasks BEGIN
        DELETE FROM task_search WHERE task_id = old.id;
    END
    """,
    f"""
    CREATE TRIGGER task_search_tag_insert AFTER INSERT ON task_tags BEGIN
        UPDATE task_search SET tags = {TAGS_OF_NEW} WHERE task_id = new.task_id;
    END
    """,
    f"""
    CREATE TRIGGER task_search_tag_delete AFTER DELETE ON task_tags BEGIN
        UPDATE task_search SET tags = {TAGS_OF_OLD} WHERE task_id = old.task_id;
    END
    """,
    f"""
    CREATE TRIGGER task_search_tag_update AFTER UPDATE ON task_tags BEGIN
        UPDATE task_search SET tags = {TAGS_OF_OLD} WHERE task_id = old.task_id;
        UPDATE task_search SET tags = {TAGS_OF_NEW} WHERE task_id = new.task_id;
    END
    """,
)

SQLITE_DOWNGRADE = (
    "DROP TRIGGER task_search_tag_update",
    "DROP TRIGGER task_search_tag_delete",
    "DROP TRIGGER task_search_tag_insert",
    "DROP TRIGGER task_search_task_delete",
    "DROP TRIGGER task_search_task_update",
    "DROP TRIGGER task_search_task_insert",
    "DROP TABLE task_search_fts",
    "DROP TABLE task_search",
)


def _run(statements):
    for statement in statements:
        op.execute(statement)


def _on_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    _run(POSTGRESQL_UPGRADE if _on_postgresql() else SQLITE_UPGRADE)


def downgrade():
    _run(POSTGRESQL_DOWNGRADE if _on_postgresql() else SQLITE_DOWNGRADE)
