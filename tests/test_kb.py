"""Knowledge base: articles and their roles, `POST /api/helpdesk/ask` (ranking, who sees what, query syntax as
words), a ticket's suggestions, and the GIN index on PostgreSQL."""

import uuid

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.extensions import db
from finstack.tickets.kb import snippet
from finstack.tickets.models import Ticket
from tests.test_tickets import desk, file  # noqa: F401 - `desk` is a fixture

ANSWER_FIELDS = {"source", "id", "title", "snippet", "score", "url"}
ARTICLE_FIELDS = {
    "id",
    "title",
    "body",
    "tags",
    "status",
    "department",
    "author",
    "published_at",
    "created_at",
    "updated_at",
}


def write(client, auth_headers, user, **fields):
    body = {"title": "Printer setup", "body": "Add the printer from the settings.", "status": "published", **fields}
    response = client.post("/api/kb/articles", json=body, headers=auth_headers(user))
    assert response.status_code == 201, response.json
    return response.json


def resolved(client, auth_headers, user, **fields):
    ticket = file(client, auth_headers, user, **fields)
    db.session.execute(sa.update(Ticket).where(Ticket.id == uuid.UUID(ticket["id"])).values(status="resolved"))
    db.session.commit()
    return ticket


def ask(client, auth_headers, user, query, **fields):
    response = client.post("/api/helpdesk/ask", json={"query": query, **fields}, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    return response.json["answers"]


def sources(answers):
    return [(answer["source"], answer["id"]) for answer in answers]


# --- Articles -----------------------------------------------------------------------------------------------------


def test_agents_write_articles_and_everyone_reads_published_ones(client, auth_headers, desk):  # noqa: F811
    draft = write(client, auth_headers, desk.hr_agent, status="draft", tags=[" Print ", "print"], department_id=desk.it)
    assert set(draft) == ARTICLE_FIELDS
    assert draft["tags"] == ["print"] and draft["department"]["id"] == desk.it and draft["published_at"] is None
    assert draft["author"]["id"] == str(desk.hr_agent.id)
    url = f"/api/kb/articles/{draft['id']}"
    requester = auth_headers(desk.requester)
    assert client.get(url, headers=requester).status_code == 404
    assert client.get("/api/kb/articles", headers=requester).json["pagination"]["total"] == 0
    assert client.get(url, headers=auth_headers(desk.agent)).status_code == 200
    listed = client.get("/api/kb/articles", query_string={"status": "draft"}, headers=auth_headers(desk.admin)).json
    assert [article["id"] for article in listed["items"]] == [draft["id"]]

    assert client.post("/api/kb/articles", json={"title": "Mine", "body": "x"}, headers=requester).status_code == 403
    assert client.put(url, json={"status": "published"}, headers=requester).status_code == 404
    published = client.put(url, json={"status": "published"}, headers=auth_headers(desk.agent))
    assert published.status_code == 200 and published.json["published_at"] is not None
    assert client.get(url, headers=requester).status_code == 200
    assert client.put(url, json={"title": "Mine now"}, headers=requester).status_code == 403
    assert client.delete(url, headers=requester).status_code == 403

    assert client.delete(url, headers=auth_headers(desk.admin)).status_code == 204
    assert client.get(url, headers=auth_headers(desk.admin)).status_code == 404
    actions = db.session.scalars(
        sa.select(AuditLog.action).where(AuditLog.entity_type == "kb_article").order_by(AuditLog.created_at)
    ).all()
    assert actions == ["kb_article.create", "kb_article.update", "kb_article.delete"]


@pytest.mark.parametrize(
    "body",
    [{"title": "ab", "body": "text"}, {"title": "Fine title", "body": " "}, {"title": "Fine", "body": "x", "x": 1}],
    ids=["short-title", "blank-body", "unknown-field"],
)
def test_article_validation(client, auth_headers, desk, body):  # noqa: F811
    assert client.post("/api/kb/articles", json=body, headers=auth_headers(desk.agent)).status_code == 400


def test_article_with_an_unknown_department_is_refused(client, auth_headers, desk):  # noqa: F811
    body = {"title": "Fine title", "body": "text", "department_id": "00000000-0000-0000-0000-000000000000"}
    assert client.post("/api/kb/articles", json=body, headers=auth_headers(desk.agent)).status_code == 404


def test_article_list_q_wants_every_word_best_first(client, auth_headers, desk):  # noqa: F811
    in_body = write(client, auth_headers, desk.agent, title="Office guide", body="The printer toner is in room 4.")
    in_title = write(client, auth_headers, desk.agent, title="Printer toner", body="Replace it when it is empty.")
    write(client, auth_headers, desk.agent, title="Toner only", body="Nothing else here.")
    headers = auth_headers(desk.requester)
    listed = client.get("/api/kb/articles", query_string={"q": "printer toner"}, headers=headers).json
    assert [article["id"] for article in listed["items"]] == [in_title["id"], in_body["id"]]
    assert listed["pagination"]["total"] == 2
    client.put(f"/api/kb/articles/{in_body['id']}", json={"body": "Nothing."}, headers=auth_headers(desk.agent))
    listed = client.get("/api/kb/articles", query_string={"q": "printers"}, headers=headers).json
    assert [article["id"] for article in listed["items"]] == [in_title["id"]]


# --- Ask ----------------------------------------------------------------------------------------------------------


def test_ask_ranks_articles_and_tickets(client, auth_headers, desk):  # noqa: F811
    in_title = write(client, auth_headers, desk.agent, title="Printer jams", body="Open tray two and pull the sheet.")
    in_body = write(client, auth_headers, desk.agent, title="Office guide", body="Ask reception about the printer.")
    write(client, auth_headers, desk.agent, title="Printer drivers", body="Draft: not ready.", status="draft")
    write(client, auth_headers, desk.agent, title="Holidays", body="Book them in the portal.")
    ticket = resolved(
        client, auth_headers, desk.requester, title="Printer jams again", description="The printer jams on tray two."
    )
    answers = ask(client, auth_headers, desk.requester, "Why does the printer jam?")
    assert all(set(answer) == ANSWER_FIELDS for answer in answers)
    assert [answer["score"] for answer in answers] == sorted((answer["score"] for answer in answers), reverse=True)
    found = sources(answers)
    assert sorted(found) == sorted([("ticket", ticket["id"]), ("article", in_title["id"]), ("article", in_body["id"])])
    assert found.index(("article", in_title["id"])) < found.index(("article", in_body["id"]))
    by_id = {answer["id"]: answer for answer in answers}
    assert by_id[in_title["id"]]["url"] == f"/api/kb/articles/{in_title['id']}"
    assert by_id[ticket["id"]]["url"] == f"/api/tickets/{ticket['id']}"
    assert by_id[in_body["id"]]["snippet"] == "Ask reception about the printer."
    assert sources(ask(client, auth_headers, desk.requester, "printer jam", limit=1)) == found[:1]
    assert ask(client, auth_headers, desk.requester, "how do I") == []


def test_ask_answers_only_resolved_tickets_the_caller_reads(client, auth_headers, desk):  # noqa: F811
    mine = resolved(client, auth_headers, desk.requester, title="Scanner broken", description="The vpn scanner died.")
    file(client, auth_headers, desk.requester, title="Scanner slow", description="The vpn scanner is slow.")
    for user, expected in (
        (desk.requester, [mine["id"]]),
        (desk.other_requester, []),
        (desk.hr_agent, []),
        (desk.agent, [mine["id"]]),
        (desk.admin, [mine["id"]]),
    ):
        assert [answer["id"] for answer in ask(client, auth_headers, user, "scanner")] == expected, user.role


def test_ticket_text_changes_reach_the_answers(client, auth_headers, desk):  # noqa: F811
    ticket = resolved(client, auth_headers, desk.requester, title="Monitor flickers", description="Since Monday.")
    db.session.execute(sa.update(Ticket).values(title="Keyboard sticks"))
    db.session.commit()
    assert ask(client, auth_headers, desk.requester, "monitor") == []
    assert sources(ask(client, auth_headers, desk.requester, "keyboard")) == [("ticket", ticket["id"])]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        'printer" OR *',
        "NEAR(printer jam)",
        "printer & !jam | x:*",
        "'printer'",
        "-printer",
        "printer*",
        "\\",
        "()",
    ],
    ids=["quote", "fts-or-star", "near", "tsquery-operators", "single-quotes", "minus", "star", "backslash", "parens"],
)
def test_query_syntax_characters_are_words(client, auth_headers, desk, query):  # noqa: F811
    article = write(client, auth_headers, desk.agent)
    answers = ask(client, auth_headers, desk.requester, query)
    expected = [("article", article["id"])] if "printer" in query else []
    assert sources(answers) == expected


def test_snippet_is_cut_at_words_around_the_first_word_found():
    text = " ".join(f"word{n}" for n in range(100)) + " the Printers are here " + " ".join("tail" for _ in range(100))
    cut = snippet(text, ["printer"])
    assert cut.startswith("…") and cut.endswith("…") and "Printers are here" in cut
    assert len(cut) <= 202 and not cut[1].isspace() and cut[1:].split()[0].startswith("word")
    assert snippet("Short text.", ["absent"]) == "Short text."


@pytest.mark.parametrize(
    "body", [{}, {"query": " "}, {"query": "x" * 501}, {"query": "x", "limit": 21}, {"query": "x", "more": 1}]
)
def test_ask_validation(client, auth_headers, desk, body):  # noqa: F811
    assert client.post("/api/helpdesk/ask", json=body, headers=auth_headers(desk.requester)).status_code == 400


# --- Suggestions --------------------------------------------------------------------------------------------------


def test_suggestions_for_the_departments_agents(client, auth_headers, desk):  # noqa: F811
    other_department = resolved(
        client, auth_headers, desk.requester, title="Payroll vpn token", description="The payroll vpn token expired."
    )
    moved = sa.update(Ticket).where(Ticket.id == uuid.UUID(other_department["id"]))
    db.session.execute(moved.values(department_id=uuid.UUID(desk.hr)))
    db.session.commit()
    same_department = resolved(
        client, auth_headers, desk.other_requester, title="Token gone", description="My vpn token expired."
    )
    file(client, auth_headers, desk.requester, title="Token again", description="The vpn token expired again.")
    article = write(client, auth_headers, desk.agent, title="VPN tokens", body="Renew the token in the portal.")
    ticket = file(client, auth_headers, desk.requester, title="VPN token expired", description="Token expired today.")
    url = f"/api/tickets/{ticket['id']}/suggestions"

    admin = client.get(url, headers=auth_headers(desk.admin))
    assert admin.status_code == 200
    assert [answer["id"] for answer in admin.json["tickets"]] == [same_department["id"], other_department["id"]]
    assert [answer["id"] for answer in admin.json["articles"]] == [article["id"]]
    agent = client.get(url, headers=auth_headers(desk.agent))
    assert [answer["id"] for answer in agent.json["tickets"]] == [same_department["id"]]
    assert client.get(url, headers=auth_headers(desk.lead)).status_code == 200
    assert client.get(url, headers=auth_headers(desk.requester)).status_code == 403
    assert client.get(url, headers=auth_headers(desk.hr_agent)).status_code == 404
    assert client.get(url, headers=auth_headers(desk.other_requester)).status_code == 404
    limited = client.get(url, query_string={"limit": 1}, headers=auth_headers(desk.admin)).json
    assert len(limited["tickets"]) == 1


# --- PostgreSQL -----------------------------------------------------------------------------------------------------


def test_postgresql_ask_uses_the_gin_indexes(client, auth_headers, desk):  # noqa: F811
    """EXPLAIN what `ask` issues over 5,000 resolved tickets and 2,000 articles whose words repeat as text does:
    the GIN indexes are read, neither table is scanned."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the GIN indexes exist on PostgreSQL only")
    db.session.execute(
        sa.text(
            "INSERT INTO tickets (id, number, title, description, urgency, status, requester_id, department_id, "
            "misuse_flag, created_at, updated_at) "
            "SELECT gen_random_uuid(), 100000 + n, 'Issue w' || (n % 997), 'about v' || (n % 101), 'low', "
            "'resolved', :user_id, :department_id, false, now(), now() FROM generate_series(1, 5000) AS n"
        ),
        {"user_id": str(desk.requester.id), "department_id": desk.it},
    )
    db.session.execute(
        sa.text(
            "INSERT INTO kb_articles (id, title, body, tags, status, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'Guide w' || (n % 997), 'about v' || (n % 101), '[]', 'published', now(), "
            "now() FROM generate_series(1, 2000) AS n"
        )
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tickets")
        connection.exec_driver_sql("VACUUM ANALYZE kb_articles")
    issued = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "search_vector" in statement:
            issued.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        answers = ask(client, auth_headers, desk.requester, "w123 w124", limit=20)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    # n % 997 in (123, 124): 5 tickets each among 5,000, 2 articles each among 2,000.
    assert len(answers) == 14
    assert {answer["title"] for answer in answers} == {"Issue w123", "Issue w124", "Guide w123", "Guide w124"}
    assert len(issued) == 2
    with db.engine.connect() as connection:
        plans = ["\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {s}", p)) for s, p in issued]
    assert "Bitmap Index Scan on ix_kb_articles_search_vector" in plans[0], plans[0]
    assert "Bitmap Index Scan on ix_tickets_search_vector" in plans[1], plans[1]
    assert all("Seq Scan on tickets" not in plan and "Seq Scan on kb_articles" not in plan for plan in plans), plans
