"""`GET /api/tickets?q=`: full text over title and description (stemmed, every word, the last one a prefix, query
syntax as plain text), the ticket number, `sort_by=relevance`, and the GIN index on PostgreSQL."""

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from tests import test_tickets
from tests.plans import issued_statements
from tests.test_tickets import file

desk = test_tickets.desk  # the fixture: two departments with rules and agents, a requester


def found(client, auth_headers, user, q, **params):
    response = client.get("/api/tickets", query_string={"q": q, "per_page": 100, **params}, headers=auth_headers(user))
    assert response.status_code == 200, response.json
    assert response.json["pagination"]["total"] == len(response.json["items"])
    return [item["id"] for item in response.json["items"]]


@pytest.fixture
def printers(client, auth_headers, desk):
    """Tickets filed by the admin (no daily limit), newest last."""

    def filed(title, description):
        return file(client, auth_headers, desk.admin, title=title, description=description)["id"]

    return type(
        "Tickets",
        (),
        {
            "toner": filed("Printer out of toner", "The third floor printer prints blank pages."),
            "jam": filed("Paper jam on floor two", "The printer in room 2.14 jams on every job."),
            "vpn": filed("VPN drops at home", "The tunnel falls over every few minutes."),
        },
    )


def test_words_are_stemmed(client, auth_headers, desk, printers):
    search = lambda q: found(client, auth_headers, desk.admin, q)  # noqa: E731
    assert search("printers") == [printers.jam, printers.toner]
    assert search("Jammed") == [printers.jam]  # "jams" and "jammed": one stem
    assert search("dropping") == [printers.vpn]


def test_every_word_must_match_the_last_as_a_prefix(client, auth_headers, desk, printers):
    search = lambda q: found(client, auth_headers, desk.admin, q)  # noqa: E731
    assert search("printer toner") == [printers.toner]
    assert search("printer ton") == [printers.toner]
    assert search("ton printer") == []
    assert search("printer vpn") == []
    assert search("the printer") == search("printer the") == [printers.jam, printers.toner]  # stop words
    assert search("the of") == []


@pytest.mark.parametrize("special", ['"', "*", ":", "&", "!", "'", "-", "(", ")", "^", "+", "|", "<->", ":*"])
def test_query_syntax_characters_are_plain_text(client, auth_headers, desk, printers, special):
    search = lambda q: found(client, auth_headers, desk.admin, q)  # noqa: E731
    assert search(f"{special}toner") == [printers.toner]
    assert search(f"toner{special}") == [printers.toner]
    assert search(f"toner {special} {special}") == [printers.toner]
    assert search(special) == []


@pytest.mark.parametrize("q", ["toner OR tunnel", "toner -tunnel", "NEAR(toner tunnel)", "toner + tunnel"])
def test_operator_words_are_words(client, auth_headers, desk, printers, q):
    # As operators, each would find one ticket or two; as words, no ticket holds them all.
    assert found(client, auth_headers, desk.admin, q) == []


def test_the_number_finds_its_ticket(client, auth_headers, desk, printers):
    # The VPN ticket: no ticket's text holds its number (the paper jam's holds "2.14").
    number = client.get(f"/api/tickets/{printers.vpn}", headers=auth_headers(desk.admin)).json["number"]
    for q in (number, number.lower(), f"tkt-{int(number[4:])}", str(int(number[4:]))):
        assert found(client, auth_headers, desk.admin, q) == [printers.vpn]
        assert found(client, auth_headers, desk.admin, q, sort_by="relevance") == [printers.vpn]
    assert found(client, auth_headers, desk.admin, "TKT-999999") == []


def test_relevance_puts_title_matches_first(client, auth_headers, desk, printers):
    search = lambda q, **params: found(client, auth_headers, desk.admin, q, **params)  # noqa: E731
    assert search("printer", sort_by="relevance") == [printers.toner, printers.jam]
    assert search("printer", sort_by="relevance", sort_order="asc") == [printers.jam, printers.toner]
    assert search("printer") == [printers.jam, printers.toner]  # the usual order: newest first
    response = client.get("/api/tickets?sort_by=relevance", headers=auth_headers(desk.admin))
    assert response.status_code == 400 and "sort_by" in response.json["details"]


def test_search_keeps_to_the_readable_tickets_and_follows_edits(client, auth_headers, desk):
    mine = file(client, auth_headers, desk.requester, title="Monitor flickers", description="The screen goes dark.")
    file(client, auth_headers, desk.other_requester, title="Monitor is dead", description="No light at all here.")
    assert found(client, auth_headers, desk.requester, "monitor") == [mine["id"]]
    body = {"title": "Display flickers"}
    assert client.put(f"/api/tickets/{mine['id']}", json=body, headers=auth_headers(desk.requester)).status_code == 200
    assert found(client, auth_headers, desk.requester, "monitor") == []
    assert found(client, auth_headers, desk.requester, "displays") == [mine["id"]]


def test_postgresql_search_uses_the_gin_index(client, auth_headers, desk):
    """EXPLAIN the statement `GET /api/tickets?q=` issues (the page, with its bounded count) over 20,000 tickets
    whose words repeat as real text does: it reads the GIN index, never scans tickets."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only")
    db.session.execute(
        sa.text(
            "INSERT INTO tickets (id, number, title, description, urgency, status, requester_id, department_id, "
            "misuse_flag, created_at, updated_at) "
            "SELECT gen_random_uuid(), 100000 + n, 'Issue w' || (n % 997), 'about v' || (n % 101), 'low', "
            "'open', :user_id, :department_id, false, now() - n * interval '1 minute', now() "
            "FROM generate_series(1, 20000) AS n"
        ),
        {"user_id": str(desk.requester.id), "department_id": desk.it},
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tickets")
    with issued_statements(db.engine, lambda statement: "search_vector" in statement) as issued:
        ids = found(client, auth_headers, desk.admin, "w123 v1")
    # "v1" is the last word, so also a prefix: v1, v10-v19, v100.
    expected = sum(1 for n in range(1, 20001) if n % 997 == 123 and str(n % 101).startswith("1"))
    assert 0 < len(ids) == expected
    assert len(issued) == 1  # the page, its bounded count a column of it
    with db.engine.connect() as connection:
        for statement, parameters in issued:
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
            assert "Bitmap Index Scan on ix_tickets_search_vector" in plan, plan
            assert "Seq Scan on tickets" not in plan, plan
