"""Word search of a list's `q` over the search objects the migrations keep by triggers (not in the models).

PostgreSQL: a `search_vector` tsvector column of the model's table, with a GIN index. SQLite: a copy of the searched
text with an integer key (`<search_table>`, holding the model's id in `key`) and an FTS5 index over it
(`<search_table>_fts`). The user's text never becomes query syntax: PostgreSQL parses it with `plainto_tsquery`,
SQLite gets every word as a quoted FTS5 string. Every word must match (AND); the last one also matches as a prefix
("repo" finds "report").
"""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR

from finstack.extensions import db


def on_postgresql():
    return db.session.get_bind().dialect.name == "postgresql"


def _alphanumeric(word):
    return "".join(character for character in word.casefold() if character.isalnum())


def fts5_words(text, stop_words=frozenset()):
    """An FTS5 expression matching every word of `text`: each one a string literal (quotes doubled), so no
    character of the user's text is an operator; the last one a prefix. Words in `stop_words` (compared by their
    letters and digits, any case) are left out, as PostgreSQL's configuration leaves out its own. None when no word
    is left that holds a letter or digit."""
    words = [word for word in text.split() if _alphanumeric(word) and _alphanumeric(word) not in stop_words]
    if not words:
        return None
    return " ".join('"{}"'.format(word.replace('"', '""')) for word in words) + " *"


def _words(configuration, text):
    return sa.func.plainto_tsquery(sa.literal_column(f"'{configuration}'"), text)


def prefix_tsquery(configuration, text):
    """`plainto_tsquery` of `text` with its last lexeme made a prefix (its text form always ends with a lexeme)."""
    words = _words(configuration, text)
    # `||`, not concat(): every step immutable, so the planner folds the query to a constant and can estimate it.
    prefixed = sa.cast(sa.cast(words, sa.Text).op("||")(":*"), TSQUERY)
    return sa.case((sa.func.numnode(words) == 0, words), else_=prefixed)


def matching_tsquery(configuration, text):
    """The query a row must match: `prefix_tsquery`, OR-ed with the same words without the prefix.

    The same rows (whatever matches the whole last word matches it as a prefix), but an estimate the planner can
    make: it prices a prefix from the column's most common lexemes and, when they are fewer than 100 (terse text
    from a small vocabulary), takes a flat 2% of the rows whatever the word; the whole words are priced from their
    own frequencies. Pagination trusts that estimate to skip counting a large match (finstack.core.pagination)."""
    return _words(configuration, text).op("||")(prefix_tsquery(configuration, text))


@dataclass(frozen=True)
class SearchIndex:
    """The search objects of one model: its PostgreSQL text search configuration, its SQLite copy table and the
    column there holding the model's id, and the bm25 weights of the FTS5 columns in declared order (as the
    PostgreSQL weights); `stop_words`, dropped from the text on SQLite, should be those of the PostgreSQL configuration
    that matter."""

    model: type
    configuration: str
    search_table: str
    key: str
    bm25_weights: tuple
    stop_words: frozenset = frozenset()

    @property
    def vector(self):
        return sa.literal_column(f"{self.model.__tablename__}.search_vector", TSVECTOR)

    def _matches(self, expression):
        search = sa.table(self.search_table, sa.column("id", sa.Integer), sa.column(self.key, sa.Uuid))
        fts = sa.table(f"{self.search_table}_fts", sa.column("rowid", sa.Integer))
        return (
            sa.select(search.c[self.key].label("row_id"))
            .join(fts, fts.c.rowid == search.c.id)
            .where(sa.literal_column(fts.name).op("MATCH")(expression))
        )

    def condition(self, text):
        """SQL: the row matches every word of `text`."""
        if on_postgresql():
            return self.vector.op("@@")(matching_tsquery(self.configuration, text))
        expression = fts5_words(text, self.stop_words)
        if expression is None:
            return sa.false()
        return self.model.id.in_(self._matches(expression))

    def with_relevance(self, statement, text, keep_unmatched=False):
        """`statement` (over the model, already filtered by `condition`) and the SQL score of each row: higher is
        better. `keep_unmatched`: `statement` may hold rows not matching the words (found otherwise); they stay, with
        the score 0."""
        if on_postgresql():
            # ts_rank is a `real`: as double precision, the score a page cursor carries compares equal to itself.
            rank = sa.func.ts_rank(self.vector, prefix_tsquery(self.configuration, text))
            return statement, sa.cast(rank, sa.Float)
        expression = fts5_words(text, self.stop_words)
        if expression is None:
            return statement, sa.literal(0.0)
        fts_name = sa.literal_column(f"{self.search_table}_fts")
        scores = (
            self._matches(expression)
            .add_columns((-sa.func.bm25(fts_name, *self.bm25_weights)).label("score"))
            .subquery("search_scores")
        )
        if keep_unmatched:
            return statement.outerjoin(scores, scores.c.row_id == self.model.id), sa.func.coalesce(scores.c.score, 0.0)
        return statement.join(scores, scores.c.row_id == self.model.id), scores.c.score
