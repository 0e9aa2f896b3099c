"""Lists page by `page` or by keyset `cursor`; totals are bounded counts (`total_exact`); a task page is lean."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from finstack.extensions import db
from finstack.tasks.models import Task, TaskTag
from finstack.tasks.schemas import SORTABLE
from tests.conftest import POSTGRES_URL

T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)


def insert_tasks(creator, rows):
    defaults = {"entity_name": "Acme", "task_type": "Call", "task_time": T0, "created_by": creator.id}
    tasks = [Task(**{**defaults, **fields}) for fields in rows]
    db.session.add_all(tasks)
    db.session.commit()
    return [str(task.id) for task in tasks]


def tied_tasks(creator, assignee):
    """Twelve tasks whose sort keys tie in groups (and two with NULL assignee/note), for every sort."""
    rows = []
    for number in range(12):
        rows.append(
            {
                "entity_name": f"Entity {number % 3}",
                "task_type": ("Call", "Visit")[number % 2],
                "task_time": T0 + timedelta(days=number % 4),
                "status": ("open", "in_progress", "closed", "cancelled")[number % 4],
                "priority": ("low", "medium", "high")[number % 3],
                "date_created": T0 - timedelta(hours=number % 5),
                "updated_at": T0 - timedelta(hours=number % 2),
                "contact_person_id": assignee.id if number % 6 else None,
                "note": f"about widgets {number}",
            }
        )
    return insert_tasks(creator, rows)


def get(client, url, headers, **query):
    response = client.get(url, query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def walk(client, url, headers, per_page, key="id", **query):
    """Every item of a list, read by cursor `per_page` at a time; checks the envelope on the way."""
    body = get(client, url, headers, per_page=per_page, **query)
    seen = [item[key] for item in body["items"]]
    while body["pagination"]["next_cursor"]:
        body = get(client, url, headers, per_page=per_page, cursor=body["pagination"]["next_cursor"], **query)
        assert body["pagination"]["page"] is None
        assert len(body["items"]) <= per_page
        seen += [item[key] for item in body["items"]]
    return seen


def one_page(client, url, headers, key="id", **query):
    body = get(client, url, headers, per_page=100, **query)
    assert body["pagination"]["next_cursor"] is None
    return [item[key] for item in body["items"]]


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", SORTABLE)
def test_a_cursor_walks_every_task_sort_with_ties(client, auth_headers, member, make_user, sort_by, sort_order):
    tied_tasks(member, make_user())
    headers = auth_headers(member)
    query = {"sort_by": sort_by, "sort_order": sort_order}
    expected = one_page(client, "/api/tasks", headers, **query)
    assert len(expected) == 12
    for per_page in (1, 5):
        assert walk(client, "/api/tasks", headers, per_page, **query) == expected


def test_a_cursor_walks_relevance_and_filters(client, auth_headers, member, make_user):
    assignee = make_user()
    tied_tasks(member, assignee)
    headers = auth_headers(member)
    for query in (
        {"q": "widgets", "sort_by": "relevance"},
        {"q": "widgets 3", "sort_by": "relevance", "sort_order": "asc"},
        {"contact_person_id": str(assignee.id), "sort_by": "task_time", "sort_order": "asc"},
        {"status": "open"},
    ):
        expected = one_page(client, "/api/tasks", headers, **query)
        assert expected, query
        assert walk(client, "/api/tasks", headers, 2, **query) == expected


def test_inserts_while_reading_neither_duplicate_nor_skip(client, auth_headers, member):
    headers = auth_headers(member)
    original = insert_tasks(member, [{"date_created": T0 - timedelta(minutes=n)} for n in range(6)])
    first = get(client, "/api/tasks", headers, per_page=2)
    # A newer task lands on top (page 2 by number would now repeat a row), and one lands among the unread rows.
    newest, middle = insert_tasks(
        member, [{"date_created": T0 + timedelta(minutes=5)}, {"date_created": T0 - timedelta(minutes=3, seconds=30)}]
    )
    seen = [item["id"] for item in first["items"]]
    cursor = first["pagination"]["next_cursor"]
    while cursor:
        body = get(client, "/api/tasks", headers, per_page=2, cursor=cursor)
        seen += [item["id"] for item in body["items"]]
        cursor = body["pagination"]["next_cursor"]
    assert len(seen) == len(set(seen))
    assert seen == [*original[:4], middle, *original[4:]]
    assert newest not in seen


def test_other_lists_page_by_cursor(client, auth_headers, admin, member, make_user):
    """Users (by name), audit log (newest first), comments (oldest first), tags (GROUP BY: keyset in HAVING)."""
    for number in range(7):
        make_user(full_name="Same Name" if number % 2 else f"Name {number}")
    headers = auth_headers(admin)
    assert walk(client, "/api/users", headers, 2) == one_page(client, "/api/users", headers)

    (task_id,) = insert_tasks(member, [{}])
    for number in range(5):
        response = client.post(
            f"/api/tasks/{task_id}/comments", json={"content": f"comment {number}"}, headers=auth_headers(member)
        )
        assert response.status_code == 201, response.json
    comments = f"/api/tasks/{task_id}/comments"
    assert walk(client, comments, headers, 2) == one_page(client, comments, headers)
    assert len(one_page(client, "/api/audit-logs", headers)) >= 5
    assert walk(client, "/api/audit-logs", headers, 3) == one_page(client, "/api/audit-logs", headers)

    task_ids = insert_tasks(member, [{} for _ in range(4)])
    tags = ("alpha", "beta", "gamma", "delta")
    db.session.add_all(TaskTag(task_id=uuid.UUID(task_ids[n]), tag=tag) for n in range(4) for tag in tags[: n + 1])
    db.session.commit()
    tags = one_page(client, "/api/tags", headers, key="tag")
    assert tags == ["alpha", "beta", "gamma", "delta"]
    assert walk(client, "/api/tags", headers, 1, key="tag") == tags


def test_total_is_exact_up_to_the_limit_and_estimated_above(app, client, auth_headers, member):
    app.config["PAGINATION_EXACT_LIMIT"] = 5
    headers = auth_headers(member)
    insert_tasks(member, [{} for _ in range(5)])
    # A substring filter: the maintained counts cannot answer it, so the bounded count does.
    body = get(client, "/api/tasks", headers, per_page=2, task_type="call")
    assert body["pagination"] | {"next_cursor": None} == {
        "page": 1, "per_page": 2, "total": 5, "pages": 3, "total_exact": True, "next_cursor": None
    }
    insert_tasks(member, [{} for _ in range(95)])
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE tasks")
    pagination = get(client, "/api/tasks", headers, per_page=2, task_type="call")["pagination"]
    assert pagination["total_exact"] is False
    if db.engine.dialect.name == "postgresql":
        assert 6 <= pagination["total"] <= 1000  # the planner's estimate of the filtered rows
    else:
        assert pagination["total"] == 5
    assert pagination["pages"] == -(-pagination["total"] // 2)
    # A filter that leaves few rows is exact again.
    insert_tasks(member, [{"entity_name": "Unique One"}])
    assert get(client, "/api/tasks", headers, entity_name="unique one")["pagination"]["total_exact"] is True


def test_a_manager_s_task_total_comes_exact_from_the_maintained_counts(app, client, auth_headers, manager, member):
    """Filtered by nothing, or by status and one counted dimension, a caller who reads every task gets an exact
    total from `task_counts`, above the exact limit too and without counting; other filters keep the bounded
    count."""
    app.config["PAGINATION_EXACT_LIMIT"] = 2
    team = client.post("/api/teams", json={"name": "Counted"}, headers=auth_headers(manager)).json
    in_team = client.post(
        "/api/projects", json={"key": "CNT", "name": "Counted", "team_id": team["id"]}, headers=auth_headers(manager)
    ).json
    elsewhere = client.post("/api/projects", json={"key": "OTH", "name": "Other"}, headers=auth_headers(manager)).json
    projects = (None, uuid.UUID(in_team["id"]), uuid.UUID(elsewhere["id"]))
    rows = []
    for number in range(30):
        rows.append(
            {
                "status": ("open", "in_progress", "closed")[number % 3],
                "priority": ("low", "high")[number % 2],
                "contact_person_id": member.id if number % 4 else None,
                "project_id": projects[number % 5 % 3],
                "created_by": (manager.id, member.id)[number % 2],
            }
        )
    insert_tasks(manager, rows)
    trashed = insert_tasks(manager, [{"priority": "high", "contact_person_id": member.id}])
    Task.query.filter_by(id=uuid.UUID(trashed[0])).update({"deleted_at": T0})
    db.session.commit()
    live = Task.query.filter(Task.deleted_at.is_(None))

    def matching(**conditions):
        query = live
        for name, value in conditions.items():
            if name == "team":
                query = query.filter(Task.project_id == uuid.UUID(in_team["id"]))
            elif name == "no_project":
                query = query.filter(Task.project_id.is_(None) if value else Task.project_id.is_not(None))
            else:
                query = query.filter(getattr(Task, name) == value)
        return query.count()

    cases = [
        ({}, {}),
        ({"status": "open"}, {"status": "open"}),
        ({"priority": "high"}, {"priority": "high"}),
        ({"priority": "high", "status": "closed"}, {"priority": "high", "status": "closed"}),
        ({"contact_person_id": str(member.id)}, {"contact_person_id": member.id}),
        ({"created_by": str(member.id), "status": "in_progress"}, {"created_by": member.id, "status": "in_progress"}),
        ({"project_id": in_team["id"]}, {"project_id": uuid.UUID(in_team["id"])}),
        ({"team_id": team["id"], "status": "open"}, {"team": True, "status": "open"}),
        ({"no_project": "true"}, {"no_project": True}),
        ({"no_project": "false", "status": "closed"}, {"no_project": False, "status": "closed"}),
    ]
    headers = auth_headers(manager)
    for query, conditions in cases:
        expected = matching(**conditions)
        assert expected > 2, query  # above the exact limit: a bounded count could not be exact
        statements = recorded(client, f"/api/tasks?{urlencode(query)}", headers)
        assert not any("count(" in statement and "FROM tasks" in statement for statement in statements), query
        body = get(client, "/api/tasks", headers, per_page=100, **query)
        assert (body["pagination"]["total"], body["pagination"]["total_exact"], len(body["items"])) == (
            expected,
            True,
            expected,
        ), query
    # Another filter, or two dimensions at once: the bounded count (limit 2, so inexact before the last page).
    for query in ({"entity_name": "acme"}, {"priority": "high", "contact_person_id": str(member.id)}):
        assert get(client, "/api/tasks", headers, per_page=1, **query)["pagination"]["total_exact"] is False, query


def test_a_member_s_total_by_project_comes_exact_from_the_maintained_counts(
    app, client, auth_headers, manager, member
):
    """Visibility goes by project: a member's list filtered by nothing, `project_id`, `team_id` or `no_project`
    (and `status`) sums the project counts of the projects they read (and the tasks in no project), exactly."""
    app.config["PAGINATION_EXACT_LIMIT"] = 2
    as_manager = auth_headers(manager)
    team = client.post("/api/teams", json={"name": "Mixed"}, headers=as_manager).json

    def project(key, visibility):
        body = {"key": key, "name": key, "team_id": team["id"], "visibility": visibility}
        return uuid.UUID(client.post("/api/projects", json=body, headers=as_manager).json["id"])

    open_one, hidden, joined = project("OPN", "open"), project("HID", "private"), project("JND", "private")
    added = client.post(f"/api/projects/{joined}/members", json={"user_id": str(member.id)}, headers=as_manager)
    assert added.status_code == 201, added.json
    places = (None, open_one, hidden, joined)
    insert_tasks(manager, [{"project_id": places[n % 4], "status": ("open", "closed")[n % 3 % 2]} for n in range(40)])
    headers = auth_headers(member)
    cases = [
        {},
        {"status": "open"},
        {"project_id": str(open_one)},
        {"project_id": str(hidden)},
        {"project_id": str(joined), "status": "closed"},
        {"team_id": team["id"]},
        {"no_project": "true"},
        {"no_project": "false", "status": "open"},
    ]
    for query in cases:
        statements = recorded(client, f"/api/tasks?{urlencode(query)}", headers)
        assert not any("count(" in statement and "FROM tasks" in statement for statement in statements), query
        body = get(client, "/api/tasks", headers, per_page=100, **query)
        listed = len(body["items"])
        assert (body["pagination"]["total"], body["pagination"]["total_exact"]) == (listed, True), query
        assert hidden not in {item["project_id"] for item in body["items"]}
    assert get(client, "/api/tasks", headers, per_page=100)["pagination"]["total"] == 30  # 10 hidden
    assert get(client, "/api/tasks", headers, project_id=str(hidden))["pagination"]["total"] == 0
    # Another dimension needs the tasks' projects: counted (bounded, so inexact above the limit of 2).
    assert get(client, "/api/tasks", headers, per_page=1, priority="medium")["pagination"]["total_exact"] is False


def insert_analyzed(creator, rows):
    """`insert_tasks`, then ANALYZE (PostgreSQL), so that the planner's estimates know the rows."""
    insert_tasks(creator, rows)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE tasks")


@pytest.mark.skipif(not POSTGRES_URL, reason="the planner's estimate is PostgreSQL's")
def test_a_list_the_planner_expects_to_be_large_is_counted_only_a_little(app, client, auth_headers, member):
    """Expected to hold PAGINATION_TRUSTED_ESTIMATE rows or more, a list is counted up to a hundredth of the exact
    limit: above that the planner's estimate is the total; at or below it (the planner misled) the count, exactly."""
    app.config.update(PAGINATION_EXACT_LIMIT=500, PAGINATION_TRUSTED_ESTIMATE=20)
    insert_analyzed(member, [{"entity_name": f"Widget {n}"} for n in range(600)] + [{"entity_name": "Gadget"}])
    headers = auth_headers(member)
    pagination = get(client, "/api/tasks", headers, entity_name="widget")["pagination"]
    # 600 rows, more than the limit of 500 but the count stopped at 6: the planner's estimate, at least the limit + 1
    assert pagination["total_exact"] is False and pagination["total"] >= 501
    # The last page by number tells the exact total all the same.
    assert get(client, "/api/tasks", headers, entity_name="widget", page=30)["pagination"]["total"] == 600
    # A misled planner: the same statistics now that all but 3 widgets are gone (as after a bulk delete).
    kept = ("Widget 1", "Widget 2", "Widget 3")
    db.session.execute(sa.delete(Task).where(Task.entity_name.like("Widget %"), Task.entity_name.not_in(kept)))
    db.session.commit()
    assert get(client, "/api/tasks", headers, entity_name="widget", per_page=1)["pagination"] | {
        "next_cursor": None
    } == {"page": 1, "per_page": 1, "total": 3, "pages": 3, "total_exact": True, "next_cursor": None}


@pytest.mark.skipif(not POSTGRES_URL, reason="the planner's estimate is PostgreSQL's")
def test_a_large_word_search_over_terse_text_is_estimated_from_its_words(app, client, auth_headers, member):
    """Terse notes from a few words give the planner fewer than 100 common lexemes, and it then prices any prefix
    at a flat 2% of the rows: the search's last word (also a prefix) must not hide a large match from the estimate,
    which would make the count find PAGINATION_EXACT_LIMIT + 1 matches on every page. (A last word cut short, not a
    lexeme itself, still has only the prefix's price: text with a real vocabulary has the common lexemes for it.)"""
    app.config.update(PAGINATION_EXACT_LIMIT=500, PAGINATION_TRUSTED_ESTIMATE=200)
    insert_analyzed(member, [{"note": f"invoice ledger item {n % 10}"} for n in range(600)] + [{"note": "audit"}])
    headers = auth_headers(member)
    pagination = get(client, "/api/tasks", headers, q="invoice ledger")["pagination"]
    # The planner's estimate of the 600 matches (the bounded count alone would have said 501).
    assert pagination["total_exact"] is False and 550 <= pagination["total"] <= 700, pagination
    assert [item["note"] for item in get(client, "/api/tasks", headers, q="audi")["items"]] == ["audit"]


def test_a_page_past_the_end_still_tells_the_total(client, auth_headers, member):
    """The bounded count rides on the page's rows; a page with no rows counts on its own and says the same total."""
    headers = auth_headers(member)
    insert_tasks(member, [{} for _ in range(3)])
    # A substring filter, which the maintained counts do not answer (unfiltered, they would give the total).
    first = get(client, "/api/tasks", headers, per_page=2, entity_name="acme")["pagination"]
    assert (first["total"], first["total_exact"], first["pages"]) == (3, True, 2)
    past = recorded(client, "/api/tasks?per_page=2&page=5&entity_name=acme", headers)
    past = [statement for statement in past if not statement.startswith("EXPLAIN")]  # PostgreSQL's estimate
    body = get(client, "/api/tasks", headers, per_page=2, page=5, entity_name="acme")
    assert body["items"] == []
    assert body["pagination"] == {
        "page": 5, "per_page": 2, "total": 3, "total_exact": True, "pages": 2, "next_cursor": None
    }
    # who is asking, the empty page, then its count alone (no rows to load)
    assert len(past) == 3 and past[2].lstrip().lower().startswith("select count(*)")
    empty = get(client, "/api/tasks", headers, entity_name="nothing like it")["pagination"]
    assert (empty["total"], empty["total_exact"], empty["pages"]) == (0, True, 0)


def encode(payload):
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_bad_cursors_are_refused(client, auth_headers, member):
    headers = auth_headers(member)
    insert_tasks(member, [{} for _ in range(3)])
    by_name = get(client, "/api/tasks", headers, per_page=1, sort_by="entity_name")["pagination"]["next_cursor"]
    users_cursor = get(client, "/api/users", headers, per_page=1)
    assert users_cursor["pagination"]["total"] >= 1
    good = get(client, "/api/tasks", headers, per_page=1)["pagination"]["next_cursor"]
    signature = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))["s"]
    for cursor in (
        "!!!",
        "bm90IGpzb24",  # "not json"
        encode([1, 2]),
        encode({"s": signature, "k": [1]}),  # too few keys
        encode({"s": signature, "k": [{"dt": "yesterday"}, {"u": "x"}]}),
        encode({"s": signature, "k": [{"zz": "1"}, None]}),
        by_name,  # made for another sort
        "x" * 2001,
    ):
        response = client.get("/api/tasks", query_string={"cursor": cursor}, headers=headers)
        assert response.status_code == 400, (cursor, response.json)
        assert "cursor" in response.json["details"]
    both = client.get("/api/tasks", query_string={"cursor": good, "page": 1}, headers=headers)
    assert both.status_code == 400
    assert both.json["details"] == {"cursor": ["Send either page or cursor, not both."]}
    assert client.get("/api/users", query_string={"cursor": good}, headers=headers).status_code == 400


def test_every_list_without_path_parameters_refuses_a_bad_cursor(client, auth_headers, admin):
    """Each list that documents `cursor` reads it (a service that forgot it would answer 500)."""
    headers = auth_headers(admin)
    paths = client.get("/api/openapi.json").json["paths"]
    lists = [
        path
        for path, operations in paths.items()
        if "{" not in path and any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    ]
    assert "/api/tasks" in lists and "/api/webhooks" in lists
    for path in lists:
        response = client.get(path, query_string={"cursor": "!!!"}, headers=headers)
        assert response.status_code == 400, (path, response.status_code, response.json)


def recorded(client, url, headers):
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(url, headers=headers)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.json
    return statements


def test_a_task_page_costs_the_same_queries_and_never_selects_password_hashes(client, auth_headers, member, make_user):
    insert_tasks(member, [{"contact_person_id": make_user().id} for _ in range(3)])
    headers = auth_headers(member)
    few = recorded(client, "/api/tasks?per_page=1", headers)
    insert_tasks(member, [{"contact_person_id": make_user().id, "entity_name": f"E {n}"} for n in range(30)])
    many = recorded(client, "/api/tasks?per_page=30", headers)
    cursor = get(client, "/api/tasks", headers, per_page=10)["pagination"]["next_cursor"]
    deep = recorded(client, f"/api/tasks?per_page=10&cursor={cursor}", headers)
    # who is asking; the page: its ids (with the total, here from the maintained counts, as a column) joined to their
    # rows and both users; on SQLite the page's tags and reminders (one statement), on PostgreSQL arrays of the rows
    assert len(few) == len(many) == len(deep) == (2 if db.engine.dialect.name == "postgresql" else 3)
    for statement in few + many + deep:
        assert "password_hash" not in statement, statement
    auth = [statement for statement in many if "token_families" in statement]
    assert len(auth) == 1 and auth == [many[0]]
    assert "users" in auth[0]
    # The ids are paged on `tasks` alone (a subquery, with its LIMIT); the rows and their users are joined to that
    # page only.
    for page in (many[1], deep[1]):
        paged = page[page.index("FROM (SELECT") : page.index(") AS page")]
        assert "FROM task_counts" in paged and "LIMIT" in paged
        assert "JOIN users" not in paged and "JOIN users" in page
        assert "JOIN token_families" not in page


def test_every_authenticated_request_asks_who_is_asking_once(client, auth_headers, admin):
    headers = auth_headers(admin)
    for url in ("/api/users", "/api/audit-logs", "/api/notifications", "/api/teams"):
        statements = recorded(client, url, headers)
        assert sum("token_families" in statement for statement in statements) == 1, url
        assert "token_families" in statements[0]
