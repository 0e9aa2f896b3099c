"""Tasks API through HTTP: create, read, list (envelope, filters, sorting, paging), update, status, delete, bulk."""

import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack.core.blueprint import ApiBlueprint
from finstack.extensions import db
from finstack.tasks.models import Task
from finstack.tasks.schemas import TaskListQuery
from finstack.users import service as users

FUTURE = "2030-06-01T09:00:00+00:00"
PAST = "2020-06-01T09:00:00+00:00"
TASK_FIELDS = {
    "id",
    "entity_name",
    "task_type",
    "task_time",
    "contact_person_id",
    "contact_person",
    "project_id",
    "tags",
    "rank",
    "reminders",
    "repeat",
    "series_id",
    "occurrence",
    "note",
    "status",
    "priority",
    "created_by",
    "creator",
    "date_created",
    "updated_at",
    "closed_at",
    "version",
    "is_overdue",
}


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def parse(value):
    """An API datetime, which must carry an explicit UTC offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def brief(user):
    return {"id": str(user.id), "username": user.username, "full_name": user.full_name}


def stored(task_id):
    """The task as the database holds it, read through a session of its own (None when absent)."""
    with Session(db.engine, expire_on_commit=False) as session:
        return session.get(Task, uuid.UUID(str(task_id)))


def task_count():
    with Session(db.engine) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Task))


def set_columns(task_id, **values):
    """Write columns the API never lets a client set (date_created, updated_at, closed_at...)."""
    db.session.execute(sa.update(Task).where(Task.id == uuid.UUID(str(task_id))).values(**values))
    db.session.commit()


def insert_tasks(creator, rows):
    """Tasks written straight through the ORM in one commit, for building list data sets quickly; their ids."""
    defaults = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": utc(2030, 1, 1), "created_by": creator.id}
    tasks = [Task(**{**defaults, **fields}) for fields in rows]
    db.session.add_all(tasks)
    db.session.commit()
    return [str(task.id) for task in tasks]


def insert_task(creator, **fields):
    (task_id,) = insert_tasks(creator, [fields])
    return task_id


@pytest.fixture
def headers(auth_headers, member):
    return auth_headers(member)


@pytest.fixture
def create_task(client, auth_headers, member):
    """POST a task as `user` (the member by default) and return the 201 body."""

    def create(user=None, **fields):
        body = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": FUTURE, **fields}
        response = client.post("/api/tasks", json=body, headers=auth_headers(user or member))
        assert response.status_code == 201, response.json
        return response.json

    return create


def list_ids(client, headers, **query):
    response = client.get("/api/tasks", query_string={"per_page": 100, **query}, headers=headers)
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def assert_validation_error(response, *fields):
    assert response.status_code == 400, response.json
    assert set(response.json) == {"error", "code", "details"}
    for field in fields:
        assert field in response.json["details"], response.json
        assert response.json["details"][field], response.json


# --- create -------------------------------------------------------------------------------------------------------


def test_create_answers_every_field(client, headers, member, manager):
    before = datetime.now(UTC)
    response = client.post(
        "/api/tasks",
        json={
            "entity_name": "Acme Ltd",
            "task_type": "Follow-up Call",
            "task_time": "2030-06-01T09:30:00+00:00",
            "contact_person_id": str(manager.id),
            "note": "Bring the contract",
            "priority": "high",
        },
        headers=headers,
    )
    after = datetime.now(UTC)

    assert response.status_code == 201, response.json
    task = response.json
    assert set(task) == TASK_FIELDS
    assert uuid.UUID(task["id"])
    assert task["entity_name"] == "Acme Ltd"
    assert task["task_type"] == "Follow-up Call"
    assert task["task_time"] == "2030-06-01T09:30:00+00:00"
    assert task["contact_person_id"] == str(manager.id)
    assert task["contact_person"] == brief(manager)
    assert task["note"] == "Bring the contract"
    assert task["status"] == "open"
    assert task["priority"] == "high"
    assert task["created_by"] == str(member.id)
    assert task["creator"] == brief(member)
    assert before - timedelta(seconds=1) <= parse(task["date_created"]) <= after + timedelta(seconds=1)
    assert before - timedelta(seconds=1) <= parse(task["updated_at"]) <= after + timedelta(seconds=1)
    assert task["closed_at"] is None
    assert task["version"] == 1
    assert task["is_overdue"] is False

    row = stored(task["id"])
    assert row.entity_name == "Acme Ltd"
    assert row.task_type == "Follow-up Call"
    assert row.task_time == utc(2030, 6, 1, 9, 30)
    assert row.contact_person_id == manager.id
    assert row.created_by == member.id
    assert row.note == "Bring the contract"
    assert (row.status, row.priority, row.version, row.closed_at) == ("open", "high", 1, None)


def test_create_defaults(client, headers):
    response = client.post(
        "/api/tasks", json={"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE}, headers=headers
    )
    assert response.status_code == 201, response.json
    task = response.json
    assert task["status"] == "open"
    assert task["priority"] == "medium"
    assert task["note"] is None
    assert task["contact_person_id"] is None
    assert task["contact_person"] is None
    assert task["closed_at"] is None
    row = stored(task["id"])
    assert (row.status, row.priority, row.contact_person_id) == ("open", "medium", None)


@pytest.mark.parametrize(
    ("sent", "answered", "in_db"),
    [
        ("2030-01-01T10:00:00+02:00", "2030-01-01T08:00:00+00:00", utc(2030, 1, 1, 8)),
        ("2030-01-01T10:00:00-05:30", "2030-01-01T15:30:00+00:00", utc(2030, 1, 1, 15, 30)),
        ("2030-01-01T10:00:00Z", "2030-01-01T10:00:00+00:00", utc(2030, 1, 1, 10)),
        # No offset: read as UTC, never as the server's local time.
        ("2030-01-01T10:00:00", "2030-01-01T10:00:00+00:00", utc(2030, 1, 1, 10)),
    ],
)
def test_task_time_is_stored_and_answered_in_utc(client, headers, sent, answered, in_db):
    response = client.post(
        "/api/tasks", json={"entity_name": "Acme", "task_type": "Call", "task_time": sent}, headers=headers
    )
    assert response.status_code == 201, response.json
    assert response.json["task_time"] == answered
    assert stored(response.json["id"]).task_time == in_db
    assert client.get(f"/api/tasks/{response.json['id']}", headers=headers).json["task_time"] == answered


@pytest.mark.parametrize("missing", ["entity_name", "task_type", "task_time"])
def test_create_requires_field(client, headers, missing):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE}
    del body[missing]
    response = client.post("/api/tasks", json=body, headers=headers)
    assert_validation_error(response, missing)
    assert set(response.json["details"]) == {missing}
    assert task_count() == 0


def test_create_with_empty_body_names_every_required_field(client, headers):
    response = client.post("/api/tasks", json={}, headers=headers)
    assert_validation_error(response, "entity_name", "task_type", "task_time")
    assert set(response.json["details"]) == {"entity_name", "task_type", "task_time"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("entity_name", ""),
        ("entity_name", "x" * 201),
        ("entity_name", None),
        ("entity_name", 42),
        ("task_type", ""),
        ("task_type", "x" * 101),
        ("note", "x" * 5001),
        ("task_time", "not a date"),
        ("task_time", "2030-02-30T10:00:00Z"),
        ("task_time", None),
        # Valid ISO-8601, but before year 1 or after 9999 once in UTC.
        ("task_time", "0001-01-01T00:00:00+01:00"),
        ("task_time", "9999-12-31T23:59:59-01:00"),
        ("status", "done"),
        ("status", "OPEN"),
        ("priority", "urgent"),
        ("contact_person_id", "not-a-uuid"),
        ("contact_person_id", 7),
        # Fields the server owns are refused, not silently ignored.
        ("created_by", "00000000-0000-0000-0000-000000000001"),
        ("version", 3),
        ("closed_at", "2030-01-01T00:00:00Z"),
        ("id", "00000000-0000-0000-0000-000000000001"),
        ("unknown_field", "x"),
    ],
)
def test_create_rejects_invalid_field(client, headers, field, value):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, field: value}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert_validation_error(response, field)
    assert task_count() == 0


@pytest.mark.parametrize(
    ("field", "value"), [("entity_name", "x" * 200), ("task_type", "y" * 100), ("note", "z" * 5000)]
)
def test_create_accepts_longest_allowed_strings(client, headers, field, value):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, field: value}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json[field] == value
    assert getattr(stored(response.json["id"]), field) == value


def test_create_rejects_malformed_json(client, headers):
    response = client.post("/api/tasks", data="{not json", content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert set(response.json) == {"error", "code", "details"}
    assert task_count() == 0


def test_create_rejects_unknown_assignee(client, headers):
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, "contact_person_id": str(uuid.uuid4())}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert_validation_error(response, "contact_person_id")
    assert task_count() == 0


def test_create_rejects_deactivated_assignee(client, headers, make_user):
    gone = make_user()
    users.set_active(gone, False)
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, "contact_person_id": str(gone.id)}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert_validation_error(response, "contact_person_id")
    assert task_count() == 0


def test_members_assign_to_any_active_user_but_an_admin(client, headers, create_task, make_user, manager, admin):
    colleague = make_user()
    assert create_task(contact_person_id=str(colleague.id))["contact_person"] == brief(colleague)
    assert create_task(contact_person_id=str(manager.id))["contact_person"] == brief(manager)
    assert task_count() == 2
    # Issue 3 (000's rule): members may not hand tasks to admins; managers and admins may.
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, "contact_person_id": str(admin.id)}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 403, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert task_count() == 2
    assert create_task(manager, contact_person_id=str(admin.id))["contact_person"] == brief(admin)
    assert create_task(admin, contact_person_id=str(admin.id))["contact_person"] == brief(admin)


def test_create_closed_sets_closed_at(client, headers):
    before = datetime.now(UTC)
    body = {"entity_name": "Acme", "task_type": "Call", "task_time": FUTURE, "status": "closed"}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "closed"
    closed_at = parse(response.json["closed_at"])
    assert before - timedelta(seconds=1) <= closed_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert stored(response.json["id"]).closed_at == closed_at


@pytest.mark.parametrize("status", ["open", "in_progress", "cancelled"])
def test_create_not_closed_leaves_closed_at_empty(create_task, status):
    task = create_task(status=status)
    assert task["status"] == status
    assert task["closed_at"] is None
    assert stored(task["id"]).closed_at is None


@pytest.mark.parametrize(
    ("status", "task_time", "overdue"),
    [
        ("open", PAST, True),
        ("in_progress", PAST, True),
        ("closed", PAST, False),
        ("cancelled", PAST, False),
        ("open", FUTURE, False),
    ],
)
def test_is_overdue(create_task, status, task_time, overdue):
    assert create_task(status=status, task_time=task_time)["is_overdue"] is overdue


# --- authentication -------------------------------------------------------------------------------------------------

ANY_ID = "3f0c8e1e-8f4e-4f43-9d43-0c2f1a4b5c6d"
PROTECTED = [
    ("post", "/api/tasks"),
    ("get", "/api/tasks"),
    ("get", f"/api/tasks/{ANY_ID}"),
    ("put", f"/api/tasks/{ANY_ID}"),
    ("delete", f"/api/tasks/{ANY_ID}"),
    ("patch", f"/api/tasks/{ANY_ID}/status"),
    ("post", "/api/tasks/bulk-status"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_task_endpoints_need_a_token(client, method, path):
    response = getattr(client, method)(path, json={"status": "closed"})
    assert response.status_code == 401
    assert set(response.json) == {"error", "code", "details"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_task_endpoints_refuse_a_garbage_token(client, method, path):
    response = getattr(client, method)(path, json={"status": "closed"}, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401


def test_deactivated_users_token_stops_working(client, headers, member, create_task):
    task = create_task()
    users.set_active(member, False)
    assert client.get("/api/tasks", headers=headers).status_code == 401
    assert client.put(f"/api/tasks/{task['id']}", json={"note": "x"}, headers=headers).status_code == 401
    assert stored(task["id"]).note is None


# --- list: envelope and paging --------------------------------------------------------------------------------------


def test_list_envelope_and_default_paging(client, headers, member):
    insert_tasks(member, [{"entity_name": f"Entity {number:02d}"} for number in range(25)])
    response = client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert set(response.json) == {"items", "pagination"}
    assert response.json["pagination"] == {
        "page": 1, "per_page": 20, "total": 25, "pages": 2, "total_exact": True, "next_cursor": ANY
    }
    assert len(response.json["items"]) == 20
    assert set(response.json["items"][0]) == TASK_FIELDS

    second = client.get("/api/tasks?page=2", headers=headers).json
    assert second["pagination"] == {
        "page": 2, "per_page": 20, "total": 25, "pages": 2, "total_exact": True, "next_cursor": None
    }
    assert len(second["items"]) == 5
    every_id = {item["id"] for item in response.json["items"]} | {item["id"] for item in second["items"]}
    assert len(every_id) == 25

    beyond = client.get("/api/tasks?page=3", headers=headers).json
    assert beyond == {
        "items": [],
        "pagination": {"page": 3, "per_page": 20, "total": 25, "pages": 2, "total_exact": True, "next_cursor": None},
    }


def test_list_empty(client, headers):
    assert client.get("/api/tasks", headers=headers).json == {
        "items": [],
        "pagination": {"page": 1, "per_page": 20, "total": 0, "pages": 0, "total_exact": True, "next_cursor": None},
    }


def test_per_page_up_to_100(client, headers, member):
    insert_tasks(member, [{}] * 101)
    response = client.get("/api/tasks?per_page=100", headers=headers)
    assert response.status_code == 200
    assert len(response.json["items"]) == 100
    assert response.json["pagination"] == {
        "page": 1, "per_page": 100, "total": 101, "pages": 2, "total_exact": True, "next_cursor": ANY
    }
    assert client.get("/api/tasks?per_page=7&page=15", headers=headers).json["pagination"]["pages"] == 15


@pytest.mark.parametrize(
    "query",
    [
        "per_page=101",
        "per_page=0",
        "per_page=-1",
        "per_page=ten",
        "page=0",
        "page=-3",
        "page=1.5",
        "page=99999999999",
        "sort_by=note",
        "sort_by=password_hash",
        "sort_by=id",
        "sort_order=up",
        "status=done",
        "priority=urgent",
        "contact_person_id=nobody",
        "created_by=123",
        "overdue=maybe",
        "unknown_filter=1",
    ],
)
def test_list_rejects_bad_query(client, headers, query):
    for _ in range(2):  # again: a query string that fails is never remembered (`StrictParser`)
        response = client.get(f"/api/tasks?{query}", headers=headers)
        assert_validation_error(response, query.split("=")[0])


def test_a_list_query_string_loaded_before_gives_each_request_its_own_values(app):
    """`TaskListQuery` loads a query string once (`StrictParser`); every request gets the values a full load gives,
    in a dict (and lists) of its own."""
    schema = TaskListQuery()
    path = "/api/tasks?tag=Alpha&tag=beta&status=open&due_to=2030-01-31&page=2"
    expected = {
        "tag": ["alpha", "beta"],
        "status": "open",
        "due_to": datetime(2030, 2, 1, tzinfo=UTC) - timedelta(microseconds=1),
        "page": 2,
        "per_page": 20,
        "cursor": None,
        "sort_by": "date_created",
        "sort_order": "desc",
    }
    for _ in range(3):
        with app.test_request_context(path):
            loaded = ApiBlueprint.ARGUMENTS_PARSER.parse(schema, location="query")
        assert loaded == expected
        loaded["tag"].append("changed by the request")
        loaded["status"] = "closed"


def test_paging_is_stable_when_sort_values_tie(client, headers, member):
    ids = set(insert_tasks(member, [{"entity_name": "Same", "date_created": utc(2024, 1, 1)}] * 7))
    for sort_by in ("entity_name", "date_created"):
        for order in ("asc", "desc"):
            seen = []
            for page in (1, 2, 3, 4):
                seen += list_ids(client, headers, sort_by=sort_by, sort_order=order, per_page=2, page=page)
            assert sorted(seen) == sorted(ids), (sort_by, order)
            # Ties are broken by id, in the requested direction, so every page is reproducible.
            assert seen == sorted(ids, reverse=order == "desc"), (sort_by, order)


# --- list: filters ---------------------------------------------------------------------------------------------------


def test_every_authenticated_user_reads_every_task(client, auth_headers, make_user, admin, manager, member):
    stranger = make_user()
    ids = {
        insert_task(admin),
        insert_task(manager, contact_person_id=admin.id),
        insert_task(stranger, contact_person_id=stranger.id),
    }
    for reader in (member, manager, admin):
        assert set(list_ids(client, auth_headers(reader))) == ids
        for task_id in ids:
            response = client.get(f"/api/tasks/{task_id}", headers=auth_headers(reader))
            assert response.status_code == 200
            assert response.json["id"] == task_id


@pytest.mark.parametrize("status", ["open", "in_progress", "closed", "cancelled"])
def test_filter_by_status(client, headers, member, status):
    ids = {value: insert_task(member, status=value) for value in ("open", "in_progress", "closed", "cancelled")}
    assert list_ids(client, headers, status=status) == [ids[status]]


@pytest.mark.parametrize("priority", ["low", "medium", "high"])
def test_filter_by_priority(client, headers, member, priority):
    ids = {value: insert_task(member, priority=value) for value in ("low", "medium", "high")}
    assert list_ids(client, headers, priority=priority) == [ids[priority]]


def test_filter_by_task_type_is_case_insensitive_substring(client, headers, member):
    ids = {name: insert_task(member, task_type=name) for name in ("Phone Call", "CALLBACK", "Meeting", "100%_x")}
    assert set(list_ids(client, headers, task_type="call")) == {ids["Phone Call"], ids["CALLBACK"]}
    assert set(list_ids(client, headers, task_type="MEET")) == {ids["Meeting"]}
    assert list_ids(client, headers, task_type="%") == [ids["100%_x"]]
    assert list_ids(client, headers, task_type="_") == [ids["100%_x"]]
    assert list_ids(client, headers, task_type="Visit") == []


ENTITY_NAMES = [
    "Acme Corp",
    "ACME bank",
    "acme",
    "100% Pure",
    "100 Pure",
    "a_b",
    "axb",
    "back\\slash",
    "backXslash",
    "dot.com",
    "dotXcom",
    "star*",
    "starr",
    "[bracket]",
    "bracket",
    "^caret$",
    "caret",
    "(paren)",
    "paren",
    "plus+",
    "pluss",
    "q?",
    "qq",
]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("acme", {"Acme Corp", "ACME bank", "acme"}),
        ("ACME B", {"ACME bank"}),
        ("%", {"100% Pure"}),
        ("0%", {"100% Pure"}),
        ("100%", {"100% Pure"}),
        ("_", {"a_b"}),
        ("a_b", {"a_b"}),
        ("\\", {"back\\slash"}),
        ("k\\s", {"back\\slash"}),
        ("\\\\", set()),
        (".", {"dot.com"}),
        ("t.c", {"dot.com"}),
        ("*", {"star*"}),
        ("r*", {"star*"}),
        ("[", {"[bracket]"}),
        ("[b", {"[bracket]"}),
        ("]", {"[bracket]"}),
        ("^", {"^caret$"}),
        ("$", {"^caret$"}),
        ("(", {"(paren)"}),
        ("+", {"plus+"}),
        ("?", {"q?"}),
        ("nothing like it", set()),
    ],
)
def test_filter_by_entity_name_is_a_literal_case_insensitive_substring(client, headers, member, term, expected):
    ids = dict(zip(ENTITY_NAMES, insert_tasks(member, [{"entity_name": name} for name in ENTITY_NAMES]), strict=True))
    found = list_ids(client, headers, entity_name=term)
    assert {name for name, task_id in ids.items() if task_id in found} == expected
    assert len(found) == len(expected)


def test_filter_by_contact_person_and_creator(client, headers, member, make_user):
    alice, bob = make_user(), make_user()
    by_alice_for_bob = insert_task(alice, contact_person_id=bob.id)
    by_bob_for_alice = insert_task(bob, contact_person_id=alice.id)
    by_bob_for_bob = insert_task(bob, contact_person_id=bob.id)
    unassigned = insert_task(member)

    assert set(list_ids(client, headers, contact_person_id=str(bob.id))) == {by_alice_for_bob, by_bob_for_bob}
    assert list_ids(client, headers, contact_person_id=str(alice.id)) == [by_bob_for_alice]
    assert set(list_ids(client, headers, created_by=str(bob.id))) == {by_bob_for_alice, by_bob_for_bob}
    assert list_ids(client, headers, created_by=str(member.id)) == [unassigned]
    assert list_ids(client, headers, created_by=str(bob.id), contact_person_id=str(alice.id)) == [by_bob_for_alice]
    assert list_ids(client, headers, contact_person_id=str(uuid.uuid4())) == []


@pytest.fixture
def dated_tasks(member):
    """Tasks created at known instants around the end of 31 May 2024 (UTC)."""
    instants = {
        "may30_noon": utc(2024, 5, 30, 12),
        "may31_start": utc(2024, 5, 31, 0, 0, 0),
        "may31_last": utc(2024, 5, 31, 23, 59, 59, 500000),
        "jun01_start": utc(2024, 6, 1, 0, 0, 0),
        "jun02": utc(2024, 6, 2, 10),
    }
    ids = {}
    for name, instant in instants.items():
        ids[name] = insert_task(member, entity_name=name)
        set_columns(ids[name], date_created=instant)
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"date_from": "2024-05-31"}, {"may31_start", "may31_last", "jun01_start", "jun02"}),
        ({"date_to": "2024-05-31"}, {"may30_noon", "may31_start", "may31_last"}),
        ({"date_from": "2024-05-31", "date_to": "2024-05-31"}, {"may31_start", "may31_last"}),
        ({"date_from": "2024-05-31T12:00:00"}, {"may31_last", "jun01_start", "jun02"}),
        ({"date_from": "2024-05-31T12:00:00Z", "date_to": "2024-06-01T00:00:00Z"}, {"may31_last", "jun01_start"}),
        ({"date_to": "2024-05-31T23:59:59.400000Z"}, {"may30_noon", "may31_start"}),
        ({"date_from": "2024-06-01T01:00:00+02:00"}, {"may31_last", "jun01_start", "jun02"}),
        ({"date_to": "2024-05-31T23:30:00-01:00"}, {"may30_noon", "may31_start", "may31_last", "jun01_start"}),
        ({"date_from": "2024-06-03"}, set()),
    ],
)
def test_filter_by_date_created(client, headers, dated_tasks, query, expected):
    found = set(list_ids(client, headers, **query))
    assert found == {dated_tasks[name] for name in expected}


def test_date_filter_offset_survives_an_unencoded_plus(client, headers, dated_tasks):
    """`+02:00` typed into a URL arrives as a space; it must still mean +02:00."""
    response = client.get("/api/tasks?date_from=2024-06-01T01:00:00+02:00", headers=headers)
    assert response.status_code == 200, response.json
    found = {item["id"] for item in response.json["items"]}
    assert found == {dated_tasks[name] for name in ("may31_last", "jun01_start", "jun02")}


@pytest.mark.parametrize(
    "value", ["2024-13-01", "2024-02-30", "31/05/2024", "yesterday", "", "2024-05-31T25:00:00", "1" * 41]
)
@pytest.mark.parametrize("field", ["date_from", "date_to"])
def test_bad_dates_are_rejected(client, headers, field, value):
    response = client.get("/api/tasks", query_string={field: value}, headers=headers)
    assert_validation_error(response, field)


@pytest.mark.parametrize(
    ("field", "value"), [("date_from", "0001-01-01T00:00:00+01:00"), ("date_to", "9999-12-31T23:59:59-01:00")]
)
def test_dates_outside_utc_range_are_rejected(client, headers, field, value):
    response = client.get("/api/tasks", query_string={field: value}, headers=headers)
    assert_validation_error(response, field)


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2024-06-02", "2024-06-01"),
        ("2024-06-01T10:00:00Z", "2024-06-01T09:59:59Z"),
        ("2024-06-01T00:00:00Z", "2024-05-31"),
    ],
)
def test_date_from_after_date_to_is_rejected(client, headers, date_from, date_to):
    response = client.get("/api/tasks", query_string={"date_from": date_from, "date_to": date_to}, headers=headers)
    assert_validation_error(response, "date_to")


def test_filter_overdue(client, headers, member):
    past = datetime.now(UTC) - timedelta(minutes=5)
    future = datetime.now(UTC) + timedelta(hours=1)
    ids = {
        "open_past": insert_task(member, status="open", task_time=past),
        "in_progress_past": insert_task(member, status="in_progress", task_time=past),
        "closed_past": insert_task(member, status="closed", task_time=past),
        "cancelled_past": insert_task(member, status="cancelled", task_time=past),
        "open_future": insert_task(member, status="open", task_time=future),
    }
    overdue = {ids["open_past"], ids["in_progress_past"]}
    assert set(list_ids(client, headers, overdue="true")) == overdue
    assert set(list_ids(client, headers, overdue="false")) == set(ids.values()) - overdue
    assert set(list_ids(client, headers)) == set(ids.values())
    assert list_ids(client, headers, overdue="true", status="in_progress") == [ids["in_progress_past"]]
    items = client.get("/api/tasks", headers=headers).json["items"]
    assert {item["id"] for item in items if item["is_overdue"]} == overdue


def test_filters_combine(client, headers, member, manager):
    wanted = insert_task(member, status="open", priority="high", task_type="Call", contact_person_id=manager.id)
    insert_task(member, status="open", priority="low", task_type="Call", contact_person_id=manager.id)
    insert_task(member, status="closed", priority="high", task_type="Call", contact_person_id=manager.id)
    insert_task(member, status="open", priority="high", task_type="Visit", contact_person_id=manager.id)
    insert_task(member, status="open", priority="high", task_type="Call")
    query = {"status": "open", "priority": "high", "task_type": "call", "contact_person_id": str(manager.id)}
    response = client.get("/api/tasks", query_string=query, headers=headers)
    assert [item["id"] for item in response.json["items"]] == [wanted]
    assert response.json["pagination"]["total"] == 1


# --- list: sorting ---------------------------------------------------------------------------------------------------

# Four tasks whose columns each put them in a different order. Expected ascending orders by index.
SORT_ROWS = [
    {
        "entity_name": "charlie",
        "task_type": "Email",
        "task_time": utc(2030, 2, 1),
        "status": "closed",
        "priority": "medium",
        "date_created": utc(2024, 1, 3),
        "updated_at": utc(2024, 2, 2),
    },
    {
        "entity_name": "alpha",
        "task_type": "Visit",
        "task_time": utc(2030, 4, 1),
        "status": "open",
        "priority": "low",
        "date_created": utc(2024, 1, 1),
        "updated_at": utc(2024, 2, 4),
    },
    {
        "entity_name": "delta",
        "task_type": "Call",
        "task_time": utc(2030, 1, 1),
        "status": "cancelled",
        "priority": "high",
        "date_created": utc(2024, 1, 2),
        "updated_at": utc(2024, 2, 3),
    },
    {
        "entity_name": "bravo",
        "task_type": "Meeting",
        "task_time": utc(2030, 3, 1),
        "status": "in_progress",
        "priority": "medium",
        "date_created": utc(2024, 1, 4),
        "updated_at": utc(2024, 2, 1),
    },
]
ASCENDING = {
    "entity_name": [1, 3, 0, 2],
    "task_type": [2, 0, 3, 1],
    "task_time": [2, 0, 3, 1],
    "date_created": [1, 2, 0, 3],
    "updated_at": [3, 0, 2, 1],
    # Statuses sort in their life-cycle order, priorities by rank: not alphabetically.
    "status": [1, 3, 0, 2],
}
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}


@pytest.fixture
def sort_rows(member):
    ids = []
    for row in SORT_ROWS:
        columns = dict(row)
        dates = {"date_created": columns.pop("date_created"), "updated_at": columns.pop("updated_at")}
        ids.append(insert_task(member, **columns))
        set_columns(ids[-1], **dates)
    return ids


@pytest.mark.parametrize("sort_by", sorted(ASCENDING))
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sort(client, headers, sort_rows, sort_by, sort_order):
    expected = [sort_rows[index] for index in ASCENDING[sort_by]]
    if sort_order == "desc":
        expected.reverse()
    assert list_ids(client, headers, sort_by=sort_by, sort_order=sort_order) == expected


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sort_by_priority_follows_rank(client, headers, sort_rows, sort_order):
    items = client.get(
        "/api/tasks", query_string={"sort_by": "priority", "sort_order": sort_order}, headers=headers
    ).json["items"]
    ranks = [PRIORITY_RANK[item["priority"]] for item in items]
    assert ranks == sorted(ranks, reverse=sort_order == "desc")
    low, high = sort_rows[1], sort_rows[2]
    assert [items[0]["id"], items[-1]["id"]] == ([low, high] if sort_order == "asc" else [high, low])


def test_default_sort_is_newest_first(client, headers, sort_rows):
    assert list_ids(client, headers) == [sort_rows[index] for index in reversed(ASCENDING["date_created"])]
    assert list_ids(client, headers, sort_by="task_time") == [
        sort_rows[index] for index in reversed(ASCENDING["task_time"])
    ]


def test_sort_applies_before_paging(client, headers, sort_rows):
    first = list_ids(client, headers, sort_by="entity_name", sort_order="asc", per_page=2, page=1)
    second = list_ids(client, headers, sort_by="entity_name", sort_order="asc", per_page=2, page=2)
    assert first + second == [sort_rows[index] for index in ASCENDING["entity_name"]]


# --- one task: read, update, status, delete --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("put", "", {"note": "x"}),
        ("delete", "", None),
        ("patch", "/status", {"status": "closed"}),
    ],
)
@pytest.mark.parametrize("task_id", ["8d0f2a3e-1c4b-4f6a-9e2d-5b7c8a9d0e1f", "not-a-uuid", "123"])
def test_unknown_task_is_404(client, headers, create_task, method, suffix, body, task_id):
    create_task()
    response = getattr(client, method)(f"/api/tasks/{task_id}{suffix}", json=body, headers=headers)
    assert response.status_code == 404
    assert set(response.json) == {"error", "code", "details"}


def test_get_one_task(client, headers, create_task):
    created = create_task(note="hello")
    response = client.get(f"/api/tasks/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json == created


def test_put_changes_only_the_given_fields(client, headers, create_task, manager):
    created = create_task(note="first", priority="low")
    set_columns(created["id"], updated_at=utc(2024, 1, 1))
    response = client.put(f"/api/tasks/{created['id']}", json={"note": "second"}, headers=headers)
    assert response.status_code == 200, response.json
    task = response.json
    assert task["note"] == "second"
    assert task["version"] == 2
    assert parse(task["updated_at"]) > utc(2024, 1, 2)
    unchanged = {key: value for key, value in created.items() if key not in {"note", "version", "updated_at"}}
    assert {key: task[key] for key in unchanged} == unchanged

    response = client.put(
        f"/api/tasks/{created['id']}",
        json={
            "entity_name": "Globex",
            "task_type": "Visit",
            "task_time": "2031-01-01T12:00:00+01:00",
            "priority": "high",
            "contact_person_id": str(manager.id),
            "note": None,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.json
    task = response.json
    assert task["entity_name"] == "Globex"
    assert task["task_type"] == "Visit"
    assert task["task_time"] == "2031-01-01T11:00:00+00:00"
    assert task["priority"] == "high"
    assert task["contact_person"] == brief(manager)
    assert task["note"] is None
    assert task["version"] == 3
    row = stored(created["id"])
    assert (row.entity_name, row.task_type, row.priority, row.note) == ("Globex", "Visit", "high", None)
    assert row.task_time == utc(2031, 1, 1, 11)
    assert row.contact_person_id == manager.id
    assert row.version == 3


def test_put_can_unassign(client, headers, create_task, manager):
    created = create_task(contact_person_id=str(manager.id))
    response = client.put(f"/api/tasks/{created['id']}", json={"contact_person_id": None}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["contact_person_id"] is None
    assert response.json["contact_person"] is None
    assert stored(created["id"]).contact_person_id is None


def test_put_refuses_unknown_or_deactivated_assignee(client, headers, create_task, make_user):
    created = create_task()
    gone = make_user()
    users.set_active(gone, False)
    for assignee in (str(uuid.uuid4()), str(gone.id)):
        response = client.put(f"/api/tasks/{created['id']}", json={"contact_person_id": assignee}, headers=headers)
        assert_validation_error(response, "contact_person_id")
    row = stored(created["id"])
    assert (row.contact_person_id, row.version) == (None, 1)


def test_put_keeps_an_assignee_deactivated_since(client, headers, create_task, make_user):
    holder = make_user()
    created = create_task(contact_person_id=str(holder.id))
    users.set_active(holder, False)
    response = client.put(
        f"/api/tasks/{created['id']}",
        json={"contact_person_id": str(holder.id), "note": "still theirs"},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    assert stored(created["id"]).note == "still theirs"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": 1},
        {"entity_name": ""},
        {"entity_name": None},
        {"entity_name": "x" * 201},
        {"task_type": "x" * 101},
        {"task_type": None},
        {"note": "x" * 5001},
        {"task_time": None},
        {"task_time": "soon"},
        {"task_time": "9999-12-31T23:30:00-01:00"},
        {"task_time": "0001-01-01T00:30:00+01:00"},
        {"status": "done"},
        {"status": None},
        {"priority": "urgent"},
        {"contact_person_id": "nobody"},
        {"version": 0},
        {"version": "one"},
        {"note": "x", "version": 1.5},  # a truncating Integer would read 1, the current version, and save
        {"note": "x", "version": "1"},
        {"note": "x", "version": True},
        {"created_by": "00000000-0000-0000-0000-000000000001"},
        {"closed_at": None},
        {"date_created": "2020-01-01T00:00:00Z"},
        {"note": "fine", "unknown": 1},
    ],
)
def test_put_rejects_bad_body(client, headers, create_task, body):
    created = create_task(note="original")
    response = client.put(f"/api/tasks/{created['id']}", json=body, headers=headers)
    assert response.status_code == 400, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert response.json["details"]
    row = stored(created["id"])
    assert (row.note, row.version, row.status, row.entity_name) == ("original", 1, "open", "Acme Ltd")


def test_put_empty_body_says_what_is_missing(client, headers, create_task):
    created = create_task()
    response = client.put(f"/api/tasks/{created['id']}", json={}, headers=headers)
    assert response.status_code == 400
    assert response.json["details"] == {"_schema": ["Give at least one field to change."]}


def test_closing_sets_and_reopening_clears_closed_at(client, headers, create_task):
    task_id = create_task()["id"]
    before = datetime.now(UTC)
    closed = client.put(f"/api/tasks/{task_id}", json={"status": "closed"}, headers=headers).json
    assert closed["status"] == "closed"
    closed_at = parse(closed["closed_at"])
    assert before - timedelta(seconds=1) <= closed_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert stored(task_id).closed_at == closed_at

    reopened = client.put(f"/api/tasks/{task_id}", json={"status": "open"}, headers=headers).json
    assert reopened["status"] == "open"
    assert reopened["closed_at"] is None
    assert stored(task_id).closed_at is None

    closed_again = client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed"}, headers=headers).json
    assert closed_again["closed_at"] is not None
    for status in ("in_progress", "cancelled"):
        client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed"}, headers=headers)
        moved = client.patch(f"/api/tasks/{task_id}/status", json={"status": status}, headers=headers)
        assert moved.status_code == 200, moved.json
        assert moved.json["status"] == status
        assert moved.json["closed_at"] is None
        assert (stored(task_id).status, stored(task_id).closed_at) == (status, None)


def test_closing_a_closed_task_keeps_its_closed_at(client, headers, create_task):
    task_id = create_task(status="closed")["id"]
    set_columns(task_id, closed_at=utc(2024, 3, 1, 12))
    for response in (
        client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed"}, headers=headers),
        client.put(f"/api/tasks/{task_id}", json={"status": "closed", "note": "n"}, headers=headers),
    ):
        assert response.status_code == 200, response.json
        assert response.json["closed_at"] == "2024-03-01T12:00:00+00:00"
    assert stored(task_id).closed_at == utc(2024, 3, 1, 12)


def test_patch_status(client, headers, create_task):
    task_id = create_task()["id"]
    set_columns(task_id, updated_at=utc(2024, 1, 1))
    response = client.patch(f"/api/tasks/{task_id}/status", json={"status": "in_progress"}, headers=headers)
    assert response.status_code == 200, response.json
    assert set(response.json) == TASK_FIELDS
    assert response.json["status"] == "in_progress"
    assert response.json["version"] == 2
    assert parse(response.json["updated_at"]) > utc(2024, 1, 2)
    row = stored(task_id)
    assert (row.status, row.version) == ("in_progress", 2)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "done"},
        {"status": None},
        {"status": "closed", "note": "x"},
        {"version": 1},
        [],
        {"status": "closed", "version": 1.5},
        {"status": "closed", "version": "1"},
    ],
)
def test_patch_status_rejects_bad_body(client, headers, create_task, body):
    task_id = create_task()["id"]
    response = client.patch(f"/api/tasks/{task_id}/status", json=body, headers=headers)
    assert response.status_code == 400, response.json
    assert set(response.json) == {"error", "code", "details"}
    row = stored(task_id)
    assert (row.status, row.version) == ("open", 1)


@pytest.mark.parametrize("version", [1.5, "1", True])
def test_cancel_refuses_a_version_that_is_not_a_whole_number(client, headers, create_task, version):
    task_id = create_task()["id"]
    response = client.patch(f"/api/tasks/{task_id}/cancel", json={"version": version}, headers=headers)
    assert response.status_code == 400, response.json
    assert list(response.json["details"]) == ["version"]
    assert (stored(task_id).status, stored(task_id).version) == ("open", 1)


def test_a_whole_version_written_as_a_decimal_is_a_version(client, headers, create_task):
    task_id = create_task()["id"]
    response = client.patch(f"/api/tasks/{task_id}/cancel", json={"version": 1.0}, headers=headers)
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["version"]) == ("cancelled", 2)


def test_version_increments_on_every_change(client, headers, create_task):
    task_id = create_task()["id"]
    assert client.put(f"/api/tasks/{task_id}", json={"note": "a"}, headers=headers).json["version"] == 2
    assert client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed"}, headers=headers).json["version"] == 3
    assert client.put(f"/api/tasks/{task_id}", json={"priority": "low"}, headers=headers).json["version"] == 4
    assert client.get(f"/api/tasks/{task_id}", headers=headers).json["version"] == 4
    assert stored(task_id).version == 4


def test_stale_version_is_refused_with_409(client, headers, create_task):
    task_id = create_task(note="original")["id"]
    assert (
        client.put(f"/api/tasks/{task_id}", json={"priority": "high", "version": 1}, headers=headers).status_code == 200
    )

    for method, suffix, body in (
        ("put", "", {"note": "lost update", "version": 1}),
        ("patch", "/status", {"status": "closed", "version": 1}),
        ("put", "", {"note": "from the future", "version": 3}),
    ):
        response = getattr(client, method)(f"/api/tasks/{task_id}{suffix}", json=body, headers=headers)
        assert response.status_code == 409, response.json
        assert set(response.json) == {"error", "code", "details"}
        assert response.json["details"] == {"current_version": 2}
    row = stored(task_id)
    assert (row.note, row.status, row.version, row.priority) == ("original", "open", 2, "high")

    current = client.patch(f"/api/tasks/{task_id}/status", json={"status": "closed", "version": 2}, headers=headers)
    assert current.status_code == 200, current.json
    assert current.json["version"] == 3


def test_delete(client, headers, create_task, member):
    keep = create_task()["id"]
    task_id = create_task()["id"]
    response = client.delete(f"/api/tasks/{task_id}", headers=headers)
    assert response.status_code == 204
    assert response.data == b""
    trashed = stored(task_id)  # in the trash (tests/test_trash.py), gone from every read path
    assert (trashed.deleted_by, trashed.deleted_at is not None, trashed.version) == (member.id, True, 2)
    assert client.get(f"/api/tasks/{task_id}", headers=headers).status_code == 404
    assert client.delete(f"/api/tasks/{task_id}", headers=headers).status_code == 404
    assert stored(keep) is not None
    assert list_ids(client, headers) == [keep]


# --- bulk status ---------------------------------------------------------------------------------------------------


def bulk(client, headers, task_ids, status="closed"):
    return client.post("/api/tasks/bulk-status", json={"task_ids": task_ids, "status": status}, headers=headers)


def test_bulk_close_as_manager(client, auth_headers, manager, member, create_task):
    ids = [create_task()["id"] for _ in range(3)]
    untouched = create_task()["id"]
    missing = str(uuid.uuid4())
    before = datetime.now(UTC)
    response = bulk(client, auth_headers(manager), [*ids, missing])
    assert response.status_code == 200, response.json
    assert set(response.json) == {"updated", "not_found", "forbidden"}
    assert sorted(response.json["updated"]) == sorted(ids)
    assert response.json["not_found"] == [missing]
    assert response.json["forbidden"] == []
    for task_id in ids:
        row = stored(task_id)
        assert row.status == "closed"
        assert row.version == 2
        assert before - timedelta(seconds=1) <= row.closed_at <= datetime.now(UTC) + timedelta(seconds=1)
        assert row.updated_at >= before - timedelta(seconds=1)
        assert client.get(f"/api/tasks/{task_id}", headers=auth_headers(member)).json["status"] == "closed"
    row = stored(untouched)
    assert (row.status, row.version, row.closed_at) == ("open", 1, None)


def test_bulk_as_member_changes_only_permitted_tasks(client, auth_headers, member, make_user):
    other = make_user()
    own = insert_task(member)
    held = insert_task(other, contact_person_id=member.id)
    foreign = insert_task(other, contact_person_id=other.id)
    set_columns(foreign, updated_at=utc(2024, 1, 1))
    missing = str(uuid.uuid4())

    response = bulk(client, auth_headers(member), [foreign, own, missing, held])
    assert response.status_code == 200, response.json
    assert sorted(response.json["updated"]) == sorted([own, held])
    assert response.json["forbidden"] == [foreign]
    assert response.json["not_found"] == [missing]
    for task_id in (own, held):
        row = stored(task_id)
        assert (row.status, row.version) == ("closed", 2)
        assert row.closed_at is not None
    row = stored(foreign)
    assert (row.status, row.version, row.closed_at, row.updated_at) == ("open", 1, None, utc(2024, 1, 1))


def test_bulk_all_forbidden_changes_nothing(client, auth_headers, member, make_user):
    other = make_user()
    ids = [insert_task(other) for _ in range(2)]
    response = bulk(client, auth_headers(member), ids)
    assert response.status_code == 200
    assert response.json == {"updated": [], "not_found": [], "forbidden": ids}
    assert {stored(task_id).status for task_id in ids} == {"open"}


def test_bulk_handles_duplicate_ids(client, auth_headers, manager, member):
    first, second = insert_task(member), insert_task(member)
    missing = str(uuid.uuid4())
    response = bulk(client, auth_headers(manager), [first, first, second, missing, first, missing])
    assert response.status_code == 200, response.json
    assert sorted(response.json["updated"]) == sorted([first, second])
    assert response.json["not_found"] == [missing]
    assert response.json["forbidden"] == []
    assert stored(first).version == 2
    assert stored(second).version == 2


def test_bulk_reopen_clears_closed_at(client, auth_headers, manager, member):
    task_id = insert_task(member, status="closed", closed_at=utc(2024, 1, 1))
    response = bulk(client, auth_headers(manager), [task_id], status="open")
    assert response.status_code == 200, response.json
    assert response.json["updated"] == [task_id]
    row = stored(task_id)
    assert (row.status, row.closed_at, row.version) == ("open", None, 2)


def test_bulk_keeps_closed_at_of_already_closed_tasks(client, auth_headers, manager, member):
    closed = insert_task(member, status="closed", closed_at=utc(2024, 1, 1))
    open_ = insert_task(member)
    response = bulk(client, auth_headers(manager), [closed, open_])
    assert response.status_code == 200, response.json
    assert sorted(response.json["updated"]) == sorted([closed, open_])
    assert (stored(closed).status, stored(closed).closed_at) == ("closed", utc(2024, 1, 1))
    assert stored(open_).closed_at is not None


@pytest.mark.parametrize("status", ["in_progress", "cancelled"])
def test_bulk_other_statuses(client, auth_headers, manager, member, status):
    ids = [insert_task(member, status="closed", closed_at=utc(2024, 1, 1)), insert_task(member)]
    response = bulk(client, auth_headers(manager), ids, status=status)
    assert response.status_code == 200, response.json
    for task_id in ids:
        row = stored(task_id)
        assert (row.status, row.closed_at, row.version) == (status, None, 2)


def test_bulk_accepts_500_ids(client, auth_headers, manager, member):
    real = insert_task(member)
    ids = [real, *(str(uuid.uuid4()) for _ in range(499))]
    response = bulk(client, auth_headers(manager), ids)
    assert response.status_code == 200, response.json
    assert response.json["updated"] == [real]
    assert len(response.json["not_found"]) == 499


@pytest.mark.parametrize(
    "body",
    [
        {"task_ids": [], "status": "closed"},
        {"task_ids": ["REAL"] + [str(uuid.UUID(int=n)) for n in range(1, 501)], "status": "closed"},
        {"task_ids": ["REAL", "not-a-uuid"], "status": "closed"},
        {"task_ids": ["REAL", 12], "status": "closed"},
        {"task_ids": "REAL", "status": "closed"},
        {"task_ids": None, "status": "closed"},
        {"task_ids": ["REAL"]},
        {"task_ids": ["REAL"], "status": "done"},
        {"status": "closed"},
        {"task_ids": ["REAL"], "status": "closed", "note": "x"},
    ],
)
def test_bulk_rejects_bad_body(client, auth_headers, manager, member, body):
    real = insert_task(member)
    if isinstance(body.get("task_ids"), list):
        body = {**body, "task_ids": [real if item == "REAL" else item for item in body["task_ids"]]}
    elif body.get("task_ids") == "REAL":
        body = {**body, "task_ids": real}
    response = client.post("/api/tasks/bulk-status", json=body, headers=auth_headers(manager))
    assert response.status_code == 400, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert response.json["details"]
    row = stored(real)
    assert (row.status, row.version) == ("open", 1)


def test_list_items_answer_what_the_task_answers(client, headers, create_task, manager):
    """The list builds its rows from Core statements and dumps them through `PlainDump`: every item is the very
    JSON `GET /api/tasks/<id>` (ORM object, marshmallow's own dump) answers, field for field and in the same order."""
    full = create_task(
        contact_person_id=str(manager.id),
        note="Bring the contract",
        priority="high",
        tags=["zeta", "Alpha", "b-2", "b_1", "ärger"],
        reminders=[{"before_minutes": 30}, {"at": "2030-05-31T09:00:00+00:00"}, {"before_minutes": 0}],
        repeat={"every": "week", "weekdays": [4, 0]},
    )
    plain = create_task(status="closed")
    monthly = create_task(repeat={"every": "month", "month_day": 31, "from": "completion"})
    listed = client.get("/api/tasks", query_string={"per_page": 100}, headers=headers)
    assert listed.status_code == 200
    items = {item["id"]: item for item in listed.json["items"]}
    assert set(items) == {full["id"], plain["id"], monthly["id"]}
    for task_id, item in items.items():
        single = client.get(f"/api/tasks/{task_id}", headers=headers).json
        assert item == single
        assert list(item) == list(single)
    assert items[full["id"]]["tags"] == ["alpha", "b-2", "b_1", "zeta", "ärger"]
    assert [reminder["before_minutes"] for reminder in items[full["id"]]["reminders"]] == [None, 30, 0]
