from flask_jwt_extended import current_user

from finstack.core.schemas import page_of
from finstack.tickets import bp, kb
from finstack.tickets.kb_schemas import (
    ArticleCreate,
    ArticleListQuery,
    ArticleOut,
    ArticleUpdate,
    AskIn,
    AskOut,
    SuggestionsOut,
    SuggestionsQuery,
)


@bp.get("/kb/articles")
@bp.auth_required()
@bp.arguments(ArticleListQuery, location="query")
@bp.response(200, page_of(ArticleOut))
def list_articles(query):
    """Published articles for everyone; drafts too for agents and admins."""
    return kb.list_articles(current_user, **query)


@bp.post("/kb/articles")
@bp.auth_required()
@bp.arguments(ArticleCreate)
@bp.response(201, ArticleOut)
def create_article(data):
    """Agents (of any department) and admins; a `draft` (the default) is not shown to others nor used in answers."""
    return kb.create_article(current_user, **data)


@bp.get("/kb/articles/<uuid:article_id>")
@bp.auth_required()
@bp.response(200, ArticleOut)
def get_article(article_id):
    """404 to whoever may not read it."""
    return kb.get_article(current_user, article_id)


@bp.put("/kb/articles/<uuid:article_id>")
@bp.auth_required()
@bp.arguments(ArticleUpdate)
@bp.response(200, ArticleOut)
def update_article(changes, article_id):
    """Agents and admins; fields left out keep their value."""
    return kb.update_article(current_user, article_id, changes)


@bp.delete("/kb/articles/<uuid:article_id>")
@bp.auth_required()
@bp.response(204)
def delete_article(article_id):
    kb.delete_article(current_user, article_id)


@bp.post("/helpdesk/ask")
@bp.auth_required()
@bp.arguments(AskIn)
@bp.response(200, AskOut)
def ask(data):
    """Ranked answers from published articles and the resolved or closed tickets the caller may read."""
    return kb.ask(current_user, **data)


@bp.get("/tickets/<uuid:ticket_id>/suggestions")
@bp.auth_required()
@bp.arguments(SuggestionsQuery, location="query")
@bp.response(200, SuggestionsOut)
def ticket_suggestions(query, ticket_id):
    """The department's agents and admins (the requester: 403; whoever may not read the ticket: 404)."""
    return kb.suggestions(current_user, ticket_id, **query)
