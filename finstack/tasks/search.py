"""Word search over tasks (`GET /api/tasks?q=`): PostgreSQL full text or SQLite FTS5.

The search objects (migration 0010) are kept up to date by database triggers and are not in the models: the ORM
never loads the search text, and `include_name` keeps Alembic's comparison away from them. The matching itself
(every word, the last one also as a prefix; the user's text never query syntax) is finstack.core.fulltext's.
"""

from finstack.core.fulltext import SearchIndex
from finstack.tasks.models import Task

# SQLite: `task_search` (the searched text with a stable integer key) and `task_search_fts`; bm25 weights of its
# columns in declared order: entity_name, task_type, note, tags (as the PostgreSQL weights).
INDEX = SearchIndex(Task, "simple", "task_search", "task_id", (10.0, 4.0, 1.0, 4.0))
condition = INDEX.condition
with_relevance = INDEX.with_relevance


# The search objects kept by triggers (migrations 0010 and 0014): tables, the tables with a search_vector column.
SEARCH_TABLE_PREFIXES = ("task_search", "ticket_search", "kb_article_search")
SEARCH_VECTOR_TABLES = ("tasks", "tickets", "kb_articles")


# PostgreSQL-only indexes, not on the models: pg_trgm GIN indexes for the substring filters, expression indexes on
# the declared order of status, priority and urgency (the lists' sorts) and on task_time while a task is active (the
# overdue filter) (migration 0024); covering partial indexes over live tasks for index-only counts (migration 0029).
POSTGRESQL_ONLY_INDEX_SUFFIXES = ("_trgm", "_order", "_active_due", "_live_count")


def include_name(name, type_, parent_names):
    """Alembic: leave the search objects of migrations 0010 and 0014, and the PostgreSQL-only indexes of 0024 and
    0029, out of the models-versus-database comparison."""
    if type_ == "table":
        # task_count_deltas: the transaction-private queue of migration 0025's count triggers (PostgreSQL).
        return not name.startswith(SEARCH_TABLE_PREFIXES) and name != "task_count_deltas"
    if type_ == "column":
        return not (parent_names.get("table_name") in SEARCH_VECTOR_TABLES and name == "search_vector")
    if type_ == "index":
        return not (
            name in {f"ix_{table}_search_vector" for table in SEARCH_VECTOR_TABLES}
            or name.endswith(POSTGRESQL_ONLY_INDEX_SUFFIXES)
        )
    return True
