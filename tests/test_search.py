"""Word search over tasks (`q`), relevance order, `due_from`/`due_to`, and the search index every write keeps right."""

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from finstack.tasks.models import Task
from tests.plans import explain, issued_statements, seq_scans

FUTURE = "2030-06-01T09:00:00+00:00"


def create(client, headers, **fields):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, **fields}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def found(client, headers, q, **params):
    response = client.get("/api/tasks", query_string={"q": q, "per_page": 100, **params}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["pagination"]["total"] == len(response.json["items"])
    return [item["id"] for item in response.json["items"]]


def on_postgresql():
    return db.engine.dialect.name == "postgresql"


def assert_index_in_step():
    """The search index holds exactly the current text of every task, tags included."""
    if on_postgresql():
        stale = db.session.scalar(
            sa.text(
                "SELECT count(*) FROM tasks "
                "WHERE search_vector IS DISTINCT FROM task_search_document(id, entity_name, task_type, note)"
            )
        )
        assert stale == 0
        return
    stale = db.session.scalar(
        sa.text(
            "SELECT count(*) FROM tasks FULL OUTER JOIN task_search ON task_search.task_id = tasks.id "
            "WHERE tasks.id IS NULL OR task_search.id IS NULL "
            "OR task_search.entity_name IS NOT tasks.entity_name OR task_search.task_type IS NOT tasks.task_type "
            "OR task_search.note IS NOT tasks.note OR coalesce(task_search.tags, '') IS NOT coalesce(("
            "SELECT group_concat(tag, ' ') FROM (SELECT tag FROM task_tags WHERE task_id = tasks.id ORDER BY tag)"
            "), '')"
        )
    )
    assert stale == 0
    # FTS5 checks its index against the content table (task_search); a mismatch raises.
    db.session.execute(sa.text("INSERT INTO task_search_fts (task_search_fts) VALUES ('integrity-check')"))
    db.session.rollback()  # end the write transaction the check opened, or the next request waits on its lock


@pytest.mark.parametrize(
    "fields",
    [
        {"entity_name": "Globex Zanzibar"},
        {"task_type": "Zanzibar visit"},
        {"note": "Ask about the Zanzibar contract."},
        {"tags": ["zanzibar"]},
    ],
    ids=["entity_name", "task_type", "note", "tags"],
)
def test_each_searched_field_matches(client, member, auth_headers, fields):
    headers = auth_headers(member)
    wanted = create(client, headers, **fields)
    create(client, headers, entity_name="Initech", note="Nothing to see", tags=["zanzi"])
    assert found(client, headers, "zanzibar") == [wanted]
    assert found(client, headers, "ZANZIBAR") == [wanted]


def test_every_word_must_match(client, member, auth_headers):
    headers = auth_headers(member)
    both = create(client, headers, entity_name="Acme", note="quarterly budget")
    create(client, headers, entity_name="Acme", note="annual plan")
    create(client, headers, entity_name="Globex", note="quarterly budget")
    assert found(client, headers, "acme budget") == [both]
    assert found(client, headers, "acme budget nowhere") == []


def test_only_the_last_word_matches_as_a_prefix(client, member, auth_headers):
    headers = auth_headers(member)
    report = create(client, headers, entity_name="Acme", note="monthly report")
    assert found(client, headers, "acme repo") == [report]
    assert found(client, headers, "repo acme") == []
    assert found(client, headers, "acme report") == [report]


def test_words_are_neither_stemmed_nor_stripped_of_accents(client, member, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Café Müller", note="reporting duties")
    assert found(client, headers, "café müller") == [task]
    assert found(client, headers, "cafe") == []
    assert found(client, headers, "report duties") == []
    assert found(client, headers, "duties report") == [task]


def test_relevance_puts_better_matches_first(client, member, auth_headers):
    headers = auth_headers(member)
    in_note = create(client, headers, entity_name="Initech", task_type="Call", note="mention of Umbrella")
    in_name = create(client, headers, entity_name="Umbrella", task_type="Call", note="regular check")
    in_type = create(client, headers, entity_name="Initech", task_type="Umbrella", note="regular check")
    create(client, headers, entity_name="Initech", task_type="Call", note="unrelated")
    assert found(client, headers, "umbrella", sort_by="relevance") == [in_name, in_type, in_note]
    assert found(client, headers, "umbrella", sort_by="relevance", sort_order="asc") == [in_note, in_type, in_name]
    # Without sort_by=relevance the list keeps its usual order (newest first).
    assert found(client, headers, "umbrella") == [in_type, in_name, in_note]


@pytest.mark.parametrize("special", ['"', "*", ":", "&", "!", "'", "-", "(", ")", "^", "+", "|", "<->", ":*"])
def test_query_syntax_characters_are_plain_text(client, member, auth_headers, special):
    headers = auth_headers(member)
    acme = create(client, headers, entity_name="Acme")
    create(client, headers, entity_name="Globex")
    assert found(client, headers, f"{special}acme") == [acme]
    assert found(client, headers, f"acme{special}") == [acme]
    assert found(client, headers, f"acme {special} {special}") == [acme]
    assert found(client, headers, special) == []


@pytest.mark.parametrize(
    "q",
    ["acme OR globex", "acme -globex", "acme NOT globex", "acme AND globex", "NEAR(acme globex)", "acme + globex"],
    ids=["or", "minus", "not", "and", "near", "plus"],
)
def test_operator_words_are_words(client, member, auth_headers, q):
    headers = auth_headers(member)
    create(client, headers, entity_name="Acme")
    create(client, headers, entity_name="Globex")
    # As operators, each of these would find one or both tasks; as words, no task holds them all.
    assert found(client, headers, q) == []


def test_operator_words_match_as_words(client, member, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Salt or pepper", note="near the end, not before")
    assert found(client, headers, "salt OR pepper") == [task]
    assert found(client, headers, "NEAR( NOT") == [task]


@pytest.mark.parametrize(
    "q",
    ["it's o'brien", "back\\slash \\' \\", "path/to/file.txt", "foo@bar.com", "'''", '"""', "a:b:c", "x:* & y:*"],
)
def test_odd_text_never_fails(client, member, auth_headers, q):
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Acme", note=q)
    expected = [task] if any(character.isalnum() for character in q) else []
    assert found(client, headers, q) == expected
    assert found(client, headers, q, sort_by="relevance") == expected


def test_search_combines_with_other_filters(client, member, auth_headers):
    headers = auth_headers(member)
    wanted = create(client, headers, entity_name="Acme", note="renewal", tags=["vip"], priority="high")
    create(client, headers, entity_name="Acme", note="renewal", tags=["vip"], priority="low")
    create(client, headers, entity_name="Acme", note="renewal", priority="high")
    create(client, headers, entity_name="Acme", note="other", tags=["vip"], priority="high")
    assert found(client, headers, "renewal", tag="vip", priority="high") == [wanted]
    assert found(client, headers, "renewal", tag="vip", priority="high", sort_by="relevance") == [wanted]


def test_trashed_tasks_are_not_found(client, member, auth_headers):
    headers = auth_headers(member)
    kept = create(client, headers, entity_name="Acme kept")
    trashed = create(client, headers, entity_name="Acme trashed")
    db.session.execute(
        sa.update(Task).where(Task.id == uuid.UUID(trashed)).values(deleted_at=datetime(2030, 1, 1, tzinfo=UTC))
    )
    db.session.commit()
    assert found(client, headers, "acme") == [kept]
    assert found(client, headers, "acme", sort_by="relevance") == [kept]
    assert found(client, headers, "trashed") == []


def test_due_from_and_due_to_filter_on_task_time(client, member, auth_headers):
    headers = auth_headers(member)
    may = create(client, headers, task_time="2030-05-31T23:30:00+00:00")
    june = create(client, headers, task_time="2030-06-15T12:00:00+00:00")
    july = create(client, headers, task_time="2030-07-01T00:00:00+00:00")

    def listed(**params):
        response = client.get("/api/tasks", query_string=params, headers=headers)
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]}

    assert listed(due_from="2030-06-01") == {june, july}
    assert listed(due_to="2030-06-30") == {may, june}  # a bare due_to covers that whole day
    assert listed(due_from="2030-06-01", due_to="2030-06-30") == {june}
    assert listed(due_from="2030-06-01T01:30:00+02:00", due_to="2030-07-01T00:00:00Z") == {may, june, july}
    assert listed(due_to="2030-06-01T01:30:00+02:00") == {may}
    assert listed(due_from="2030-06-01", q="acme") == {june, july}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"sort_by": "relevance"}, "sort_by"),
        ({"q": "   "}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"due_from": "2030-06-02", "due_to": "2030-06-01"}, "due_to"),
        ({"due_from": "tomorrow"}, "due_from"),
    ],
    ids=["relevance-without-q", "blank-q", "empty-q", "long-q", "due-from-after-due-to", "bad-due-from"],
)
def test_bad_search_parameters_are_400(client, member, auth_headers, params, field):
    response = client.get("/api/tasks", query_string=params, headers=auth_headers(member))
    assert response.status_code == 400, response.json
    assert field in response.json["details"]


def test_q_is_stripped_and_may_hold_200_characters(client, member, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Acme")
    assert found(client, headers, "  acme  ") == [task]
    assert found(client, headers, " ".join(["acme"] * 39) + " acm") == [task]  # 199 characters


def test_every_write_keeps_the_index_in_step(client, member, manager, auth_headers):
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Acme", task_type="Call", note="first draft", tags=["alpha"])
    other = create(client, headers, entity_name="Globex", task_type="Meeting", tags=["alpha", "beta"])
    assert_index_in_step()
    changes = (("entity_name", "acme", "Initech"), ("task_type", "call", "Visit"), ("note", "draft", "final"))
    for field, old, new in changes:
        response = client.put(f"/api/tasks/{task}", json={field: new}, headers=headers)
        assert response.status_code == 200, response.json
        assert found(client, headers, old) == []
        assert found(client, headers, new) == [task]
        assert_index_in_step()
    assert client.put(f"/api/tasks/{task}", json={"note": None}, headers=headers).status_code == 200
    assert found(client, headers, "final") == []
    assert client.put(f"/api/tasks/{task}", json={"tags": ["gamma", "beta"]}, headers=headers).status_code == 200
    assert found(client, headers, "alpha") == [other]
    assert set(found(client, headers, "beta")) == {task, other}
    assert found(client, headers, "gamma") == [task]
    assert_index_in_step()
    response = client.post(
        "/api/tasks/bulk-update",
        json={"task_ids": [task, other], "status": "in_progress", "priority": "high"},
        headers=auth_headers(manager),
    )
    assert response.status_code == 200 and len(response.json["updated"]) == 2
    assert set(found(client, headers, "beta")) == {task, other}
    assert_index_in_step()
    assert client.delete(f"/api/tasks/{other}", headers=headers).status_code == 204
    assert found(client, headers, "beta") == [task]
    assert_index_in_step()


def test_set_based_sql_writes_keep_the_index_in_step(client, member, auth_headers):
    """Writes that bypass the service (the CLI, a hand-run UPDATE) are covered too: the index is kept by triggers."""
    headers = auth_headers(member)
    task = create(client, headers, entity_name="Acme", tags=["alpha"])
    db.session.execute(sa.update(Task).values(note="Handwritten note"))
    db.session.execute(sa.text("DELETE FROM task_tags"))
    db.session.commit()
    assert found(client, headers, "handwritten") == [task]
    assert found(client, headers, "alpha") == []
    assert_index_in_step()


def test_postgresql_search_uses_the_gin_index(client, member, auth_headers):
    """EXPLAIN the statement `GET /api/tasks?q=` really issues (the page, with its bounded count) over 20,000 tasks
    whose words repeat as real text does (so ANALYZE has word frequencies): it reads the GIN index, never scans
    tasks."""
    if not on_postgresql():
        pytest.skip("the GIN index exists on PostgreSQL only")
    db.session.execute(
        sa.text(
            "INSERT INTO tasks (id, entity_name, task_type, task_time, note, status, priority, created_by, "
            "date_created, updated_at, version) "
            "SELECT gen_random_uuid(), 'Company w' || (n % 997), 'Call', now(), 'about v' || (n % 101), 'open', "
            "'medium', :user_id, now() - n * interval '1 minute', now(), 1 FROM generate_series(1, 20000) AS n"
        ),
        {"user_id": str(member.id)},
    )
    db.session.commit()
    # What autovacuum does on a live database: word statistics, and the GIN pending list merged into the index.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tasks")
    with issued_statements(db.engine, lambda statement: "search_vector" in statement) as issued:
        response = client.get("/api/tasks", query_string={"q": "w123 v1"}, headers=auth_headers(member))
    assert response.status_code == 200
    # "v1" is the last word, so also a prefix: v1, v10-v19, v100.
    expected = sum(1 for n in range(1, 20001) if n % 997 == 123 and str(n % 101).startswith("1"))
    assert 0 < response.json["pagination"]["total"] == expected
    assert len(issued) == 1  # the page, its bounded count a column of it
    for statement, parameters in issued:
        plan = explain(db.engine, statement, parameters)
        assert "Bitmap Index Scan on ix_tasks_search_vector" in plan, plan
        assert not seq_scans(plan, "tasks"), plan
