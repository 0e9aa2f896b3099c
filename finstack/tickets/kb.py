"""Knowledge base: articles, and the answerer behind `POST /api/helpdesk/ask` and a ticket's suggestions.

The answerer is chosen by the HELPDESK_ANSWERER setting: any object with `answers(actor, query, limit)` and
`suggestions(actor, ticket, limit)`; a model-backed one can be registered in ANSWERERS later. `fulltext` ranks with
the database's full-text search (migration 0014: PostgreSQL tsvector + GIN, SQLite FTS5, kept by triggers). The
user's text never becomes query syntax: it is cut into words here, each word handed over as a bound value
(PostgreSQL `plainto_tsquery`) or a quoted FTS5 string. A question matches what holds any of its words, the more
(and the more in the title) the better; the `q` filter of the article list wants every word.
"""

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import TSVECTOR

from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tickets import service as tickets
from finstack.tickets.models import KbArticle, Ticket
from finstack.tickets.search import BM25_WEIGHTS, STOP_WORDS, WORD

CONFIGURATION = "english"
MAX_WORDS = 32  # of a question or a ticket's text, the first distinct ones
ANSWERED_STATUSES = ("resolved", "closed")
SNIPPET_LENGTH = 200


@dataclass(frozen=True)
class Source:
    name: str
    model: type
    vector: object  # PostgreSQL: the tsvector column, not mapped
    search_table: str  # SQLite: the copy of the text (integer key) and its FTS5 table
    key: str
    bm25_weights: tuple  # as the PostgreSQL weights: title A, tags B, resolution C, body and description D

    def url(self, row_id):
        return {"article": f"/api/kb/articles/{row_id}", "ticket": f"/api/tickets/{row_id}"}[self.name]


ARTICLES = Source(
    "article", KbArticle, sa.literal_column("kb_articles.search_vector", TSVECTOR), "kb_article_search",
    "article_id", (10.0, 4.0, 1.0),
)
TICKETS = Source(
    "ticket", Ticket, sa.literal_column("tickets.search_vector", TSVECTOR), "ticket_search", "ticket_id", BM25_WEIGHTS
)


def query_words(text):
    """The distinct words of `text` worth searching, lower-cased, in order, at most MAX_WORDS."""
    words = []
    for word in WORD.findall(text.casefold()):
        if word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_WORDS]


def _on_postgresql():
    return db.session.get_bind().dialect.name == "postgresql"


def ranked(statement, source, words, every_word=False):
    """`statement` (over the source's model) kept to rows matching the words, and the SQL score: higher is better."""
    if _on_postgresql():
        operator = "&&" if every_word else "||"
        parts = [sa.func.plainto_tsquery(sa.literal_column(f"'{CONFIGURATION}'"), word) for word in words]
        query = functools.reduce(lambda left, right: left.op(operator)(right), parts)
        return statement.where(source.vector.op("@@")(query)), sa.func.ts_rank(source.vector, query)
    search = sa.table(source.search_table, sa.column("id", sa.Integer), sa.column(source.key, sa.Uuid))
    fts_name = f"{source.search_table}_fts"
    fts = sa.table(fts_name, sa.column("rowid", sa.Integer))
    expression = (" AND " if every_word else " OR ").join('"{}"'.format(word.replace('"', '""')) for word in words)
    scores = (
        sa.select(
            search.c[source.key].label("row_id"),
            (-sa.func.bm25(sa.literal_column(fts_name), *source.bm25_weights)).label("score"),
        )
        .join(fts, fts.c.rowid == search.c.id)
        .where(sa.literal_column(fts_name).op("MATCH")(expression))
        .subquery("search_scores")
    )
    return statement.join(scores, scores.c.row_id == source.model.id), scores.c.score


def snippet(text, words):
    """About SNIPPET_LENGTH characters of `text` around the first word found (its stem, roughly), else its start."""
    lowered = text.lower()
    found = [lowered.find(word[: max(4, len(word) - 2)]) for word in words]
    start = min((position for position in found if position >= 0), default=0)
    start = max(0, start - SNIPPET_LENGTH // 4)
    if start:
        start = text.find(" ", start) + 1 or start
    end = start + SNIPPET_LENGTH
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


# --- The answerer ------------------------------------------------------------------------------------------------


def _answer(source, row, score, words):
    # A ticket answers with its resolution when it has one (migration 0018), else with its description.
    text = row.body if source is ARTICLES else row.resolution or row.description
    return {
        "source": source.name,
        "id": row.id,
        "title": row.title,
        "snippet": snippet(text, words),
        "score": round(float(score), 6),
        "url": source.url(row.id),
    }


def _best(source, conditions, words, limit, first=None):
    """The `limit` best rows of the source meeting `conditions`, as answers; `first` (SQL boolean) ranks ahead.

    Ranked on ids and scores alone, then only the winners are loaded: the whole rows with their eager-loaded users
    joined to every match would cost about as much as the ranking itself (bench/RESULTS.md, helpdesk)."""
    model = source.model
    statement, score = ranked(sa.select(model.id).where(*conditions), source, words)
    order = [score.desc(), model.id]
    if first is not None:
        order.insert(0, sa.case((first, 0), else_=1))
    best = db.session.execute(statement.add_columns(score).order_by(*order).limit(limit)).all()
    rows = {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_([id_ for id_, _ in best])))}
    return [_answer(source, rows[row_id], row_score, words) for row_id, row_score in best]


def _answered_tickets(actor):
    return [
        Ticket.status.in_(ANSWERED_STATUSES),
        permissions.readable_tickets_clause(actor, Ticket, tickets._agent_departments(actor.id)),
    ]


class FullText:
    name = "fulltext"

    def answers(self, actor, query, limit):
        """Published articles and resolved or closed tickets `actor` may read, best first; ties: articles first."""
        words = query_words(query)
        if not words:
            return []
        found = _best(ARTICLES, [KbArticle.status == "published"], words, limit)
        found += _best(TICKETS, _answered_tickets(actor), words, limit)
        found.sort(key=lambda answer: (-answer["score"], answer["source"] != "article"))
        return found[:limit]

    def suggestions(self, actor, ticket, limit):
        """Resolved or closed tickets like `ticket` and published articles matching it; its department's first."""
        words = query_words(f"{ticket.title} {ticket.description}")
        if not words:
            return {"tickets": [], "articles": []}
        similar = [*_answered_tickets(actor), Ticket.id != ticket.id]
        published = [KbArticle.status == "published"]
        return {
            "tickets": _best(TICKETS, similar, words, limit, Ticket.department_id == ticket.department_id),
            "articles": _best(ARTICLES, published, words, limit, KbArticle.department_id == ticket.department_id),
        }


ANSWERERS = {"fulltext": FullText}


def answerer():
    return ANSWERERS[current_app.config["HELPDESK_ANSWERER"]]()


def ask(actor, *, query, limit):
    return {"answers": answerer().answers(actor, query, limit)}


def suggestions(actor, ticket_id, *, limit):
    """For the ticket's department's agents and admins; 404 to whoever may not read the ticket, 403 to others."""
    ticket = tickets.get_ticket(actor, ticket_id)
    role = tickets.department_role(ticket.department_id, actor.id)
    permissions.require(
        permissions.can_work_ticket(actor, role), "Only the department's agents or an admin see suggestions"
    )
    return answerer().suggestions(actor, ticket, limit)


# --- Articles ----------------------------------------------------------------------------------------------------


def _is_agent(user):
    return db.session.scalar(sa.select(tickets._agent_departments(user.id).exists()))


def _require_writer(actor):
    permissions.require(
        permissions.can_write_kb_article(actor, _is_agent(actor)), "Only agents and admins write articles"
    )


def _check_department(department_id):
    if department_id is not None:
        tickets.get_department(department_id)


def get_article(actor, article_id):
    """404 to whoever may not read it (drafts: agents and admins)."""
    article = db.session.get(KbArticle, article_id)
    if article is None or not permissions.can_read_kb_article(actor, article, _is_agent(actor)):
        raise ApiError(404, "Article not found")
    return article


def list_articles(actor, *, page, per_page, cursor=None, q=None, **filters):
    """Newest change first; with `q`, articles holding every word of it, best first."""
    conditions = [permissions.readable_kb_articles_clause(actor, KbArticle, _is_agent(actor))]
    conditions += [getattr(KbArticle, name) == value for name, value in filters.items()]
    statement = sa.select(KbArticle).where(*conditions)
    order = [KbArticle.updated_at.desc(), KbArticle.id]
    words = query_words(q) if q else None
    if q and not words:
        statement = statement.where(sa.false())
    elif words:
        statement, score = ranked(statement, ARTICLES, words, every_word=True)
        order.insert(0, score.desc())
    count = statement.with_only_columns(KbArticle.id)
    return paginate(statement.order_by(*order), page=page, per_page=per_page, cursor=cursor, count_statement=count)


def _publication(article, status):
    if status == "published" and article.status != "published":
        article.published_at = utcnow()


def create_article(actor, *, title, body, tags, status, department_id=None):
    _require_writer(actor)
    _check_department(department_id)
    article = KbArticle(
        title=title, body=body, tags=tags, status=status, department_id=department_id, author_id=actor.id
    )
    _publication(article, status)
    db.session.add(article)
    db.session.flush()
    audit.record(actor, "kb_article.create", "kb_article", article.id, {"title": title, "status": status})
    db.session.commit()
    return article


def update_article(actor, article_id, changes):
    article = get_article(actor, article_id)
    _require_writer(actor)
    if "department_id" in changes:
        _check_department(changes["department_id"])
    if "status" in changes:
        _publication(article, changes["status"])
    changed = audit.diff(article, changes)
    if changed:
        for name in changed:
            setattr(article, name, changes[name])
        audit.record(actor, "kb_article.update", "kb_article", article.id, changed)
        db.session.commit()
    return article


def delete_article(actor, article_id):
    article = get_article(actor, article_id)
    _require_writer(actor)
    audit.record(actor, "kb_article.delete", "kb_article", article.id, {"title": article.title})
    db.session.delete(article)
    db.session.commit()
