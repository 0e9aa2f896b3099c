"""Word search over tasks (`GET /api/tasks?q=`): PostgreSQL full text or SQLite FTS5.

The search objects (migration 0010) are kept up to date by database triggers and are not in the models: the ORM
never loads the search text, and `include_name` keeps Alembic's comparison away from them. The user's text never
becomes query syntax: PostgreSQL parses it with `plainto_tsquery`, SQLite gets every word as a quoted FTS5 string.
Every word must match (AND); the last one also matches as a prefix ("repo" finds "report").
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR

from finstack.extensions import db
from finstack.tasks.models import Task

CONFIGURATION = "simple"

# PostgreSQL: a column of tasks, filled by a trigger; deliberately not mapped.
SEARCH_VECTOR = sa.literal_column("tasks.search_vector", TSVECTOR)

# SQLite: the searched text with a stable integer key, and the FTS5 index over it.
TASK_SEARCH = sa.table("task_search", sa.column("id", sa.Integer), sa.column("task_id", sa.Uuid))
TASK_SEARCH_FTS = sa.table("task_search_fts", sa.column("rowid", sa.Integer))
FTS_TABLE = sa.literal_column("task_search_fts")
# bm25 weights of the FTS5 columns in declared order: entity_name, task_type, note, tags (as the PostgreSQL weights).
BM25_WEIGHTS = (10.0, 4.0, 1.0, 4.0)


# The search objects kept by triggers (migrations 0010 and 0014): tables, the tables with a search_vector column.
SEARCH_TABLE_PREFIXES = ("task_search", "ticket_search", "kb_article_search")
SEARCH_VECTOR_TABLES = ("tasks", "tickets", "kb_articles")


def include_name(name, type_, parent_names):
    """Alembic: leave the search objects of migrations 0010 and 0014 out of the models-versus-database comparison."""
    if type_ == "table":
        return not name.startswith(SEARCH_TABLE_PREFIXES)
    if type_ == "column":
        return not (parent_names.get("table_name") in SEARCH_VECTOR_TABLES and name == "search_vector")
    if type_ == "index":
        return name not in {f"ix_{table}_search_vector" for table in SEARCH_VECTOR_TABLES}
    return True


def _on_postgresql():
    return db.session.get_bind().dialect.name == "postgresql"


def _fts5_words(text):
    """An FTS5 expression matching every word of `text`: each one a string literal (quotes doubled), so no
    character of the user's text is an operator; the last one a prefix. None when no word holds a letter or digit."""
    words = [word for word in text.split() if any(character.isalnum() for character in word)]
    if not words:
        return None
    return " ".join('"{}"'.format(word.replace('"', '""')) for word in words) + " *"


def _tsquery(text):
    """`plainto_tsquery` of `text` with its last lexeme made a prefix (its text form always ends with a lexeme)."""
    words = sa.func.plainto_tsquery(sa.literal_column(f"'{CONFIGURATION}'"), text)
    # `||`, not concat(): every step immutable, so the planner folds the query to a constant and can estimate it.
    prefixed = sa.cast(sa.cast(words, sa.Text).op("||")(":*"), TSQUERY)
    return sa.case((sa.func.numnode(words) == 0, words), else_=prefixed)


def _fts_matches(expression):
    return (
        sa.select(TASK_SEARCH.c.task_id)
        .join(TASK_SEARCH_FTS, TASK_SEARCH_FTS.c.rowid == TASK_SEARCH.c.id)
        .where(FTS_TABLE.op("MATCH")(expression))
    )


def condition(text):
    """SQL: the task matches every word of `text`."""
    if _on_postgresql():
        return SEARCH_VECTOR.op("@@")(_tsquery(text))
    expression = _fts5_words(text)
    if expression is None:
        return sa.false()
    return Task.id.in_(_fts_matches(expression))


def with_relevance(statement, text):
    """`statement` (over tasks, already filtered by `condition`) and the SQL score of each task: higher is better."""
    if _on_postgresql():
        return statement, sa.func.ts_rank(SEARCH_VECTOR, _tsquery(text))
    expression = _fts5_words(text)
    if expression is None:
        return statement, sa.null()
    scores = (
        _fts_matches(expression)
        .add_columns((-sa.func.bm25(FTS_TABLE, *BM25_WEIGHTS)).label("score"))
        .subquery("search_scores")
    )
    return statement.join(scores, scores.c.task_id == Task.id), scores.c.score
