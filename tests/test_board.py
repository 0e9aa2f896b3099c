"""The kanban board: GET /api/projects/<id>/board, PATCH /api/tasks/<id>/move, rank keys in the database (new tasks,
status changes, rebalance, the 0009 backfill), concurrent moves, and the project room's live events.

People in `world` (tests/worlds.py, shared with test_projects): `admin`, `manager`, `lead`, `staff`, `member`,
`viewer`, `outsider`, one per way of relating to the private project.
"""

import threading
import uuid
from datetime import timedelta
from unittest.mock import ANY

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finstack.audit.models import AuditLog
from finstack.core.time import utcnow
from finstack.extensions import db, socketio
from finstack.notifications.models import Notification
from finstack.tasks import board, ranks
from finstack.tasks.models import Task
from finstack.users.models import User
from tests import worlds

world = worlds.world  # the fixture
MISSING = "00000000-0000-0000-0000-000000000000"
QUIET = 0.3  # seconds to wait before asserting that an event did NOT arrive


def assert_error(response, status, code):
    assert response.status_code == status, response.json
    assert response.json["code"] == code
    return response.json


def new_task(client, headers, **fields):
    body = {"entity_name": "Acme", "task_type": "Audit", "task_time": "2030-01-01T09:00:00Z", **fields}
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def cards(client, auth_headers, world):
    """`cards(n, status="open", by="member")`: n tasks of the project, created in that order (the last on top)."""

    def make(count, status="open", by="member", **fields):
        headers = auth_headers(world["people"][by])
        return [
            new_task(
                client, headers, project_id=world["project"]["id"], status=status, entity_name=f"Card {n}", **fields
            )
            for n in range(count)
        ]

    return make


def get_board(client, headers, url, **query):
    response = client.get(url, query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return {column["status"]: column for column in response.json["columns"]}


def column_ids(client, headers, url, status="open"):
    return [item["id"] for item in get_board(client, headers, url, per_column=200)[status]["items"]]


def move(client, headers, task_id, **body):
    return client.patch(f"/api/tasks/{task_id}/move", json=body, headers=headers)


def stored_ranks(project_id, status):
    return db.session.execute(
        sa.select(Task.id, Task.rank)
        .where(Task.project_id == uuid.UUID(project_id), Task.status == status)
        .order_by(Task.rank)
    ).all()


# --- The board --------------------------------------------------------------------------------------------------


def test_board_shape_order_totals_and_per_column(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    opened = cards(3)
    closed = cards(1, status="closed")
    cards(1, status="cancelled")
    new_task(client, headers)  # in no project: on no board

    response = client.get(world["board"], query_string={"per_column": 2}, headers=headers)
    assert response.status_code == 200
    assert list(response.json) == ["columns"]
    columns = response.json["columns"]
    assert [column["status"] for column in columns] == ["open", "in_progress", "closed"]
    assert all(set(column) == {"status", "total", "items"} for column in columns)
    by_status = {column["status"]: column for column in columns}
    assert by_status["open"]["total"] == 3
    # New cards go on top: newest first, and only per_column of them.
    assert [item["id"] for item in by_status["open"]["items"]] == [opened[2]["id"], opened[1]["id"]]
    assert by_status["in_progress"] == {"status": "in_progress", "total": 0, "items": []}
    assert by_status["closed"]["items"] == [{**closed[0], "version": by_status["closed"]["items"][0]["version"]}]
    first = by_status["open"]["items"][0]
    assert set(first) == set(opened[0]) and first["rank"] < by_status["open"]["items"][1]["rank"]

    with_cancelled = get_board(client, headers, world["board"], include_cancelled="true")
    assert list(with_cancelled) == ["open", "in_progress", "closed", "cancelled"]
    assert with_cancelled["cancelled"]["total"] == 1


def test_board_leaves_out_trashed_tasks(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    kept, trashed = cards(2)
    db.session.execute(
        sa.update(Task).where(Task.id == uuid.UUID(trashed["id"])).values(deleted_at=utcnow(), deleted_by=None)
    )
    db.session.commit()
    column = get_board(client, headers, world["board"])["open"]
    assert column["total"] == 1
    assert [item["id"] for item in column["items"]] == [kept["id"]]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("admin", 200),
        ("manager", 200),
        ("lead", 200),
        ("staff", 200),
        ("member", 200),
        ("viewer", 200),
        ("outsider", 404),
    ],
)
def test_who_reads_the_board_of_a_private_project(client, auth_headers, world, name, status):
    response = client.get(world["board"], headers=auth_headers(world["people"][name]))
    assert response.status_code == status, response.json


def test_board_of_an_open_project_and_of_none(client, auth_headers, world, make_user):
    manager = auth_headers(world["people"]["manager"])
    response = client.put(f"/api/projects/{world['project']['id']}", json={"visibility": "open"}, headers=manager)
    assert response.status_code == 200
    assert client.get(world["board"], headers=auth_headers(world["people"]["outsider"])).status_code == 200
    assert_error(client.get(f"/api/projects/{MISSING}/board", headers=manager), 404, "not_found")


@pytest.mark.parametrize("query", [{"per_column": 0}, {"per_column": 201}, {"include_cancelled": "maybe"}, {"x": 1}])
def test_board_query_is_validated(client, auth_headers, world, query):
    response = client.get(world["board"], query_string=query, headers=auth_headers(world["people"]["member"]))
    assert_error(response, 400, "validation_failed")


# --- Moves -------------------------------------------------------------------------------------------------------


def test_move_below_above_and_to_the_top(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    c, b, a = (card["id"] for card in cards(3))  # each new card goes on top: a, then b, then c
    assert column_ids(client, headers, world["board"]) == [a, b, c]

    response = move(client, headers, a, status="open", after_id=c)
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2
    assert column_ids(client, headers, world["board"]) == [b, c, a]

    assert move(client, headers, a, status="open", before_id=c).status_code == 200
    assert column_ids(client, headers, world["board"]) == [b, a, c]

    assert move(client, headers, c, status="open").status_code == 200
    assert column_ids(client, headers, world["board"]) == [c, b, a]

    assert move(client, headers, a, status="open", after_id=c, before_id=b).status_code == 200
    assert column_ids(client, headers, world["board"]) == [c, a, b]


def test_move_to_another_column_changes_status_audits_and_notifies(client, auth_headers, world, cards):
    member = world["people"]["member"]
    doing = cards(2, status="in_progress", by="manager")
    task = cards(1, by="manager", contact_person_id=str(member.id))[0]
    headers = auth_headers(member)

    response = move(client, headers, task["id"], new_status="in_progress", after_id=doing[1]["id"], version=1)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "in_progress"
    board_now = get_board(client, headers, world["board"])
    assert board_now["open"]["total"] == 0
    assert [item["id"] for item in board_now["in_progress"]["items"]] == [doing[1]["id"], task["id"], doing[0]["id"]]

    entry = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "task.move")).one()
    assert entry.actor_id == member.id and str(entry.entity_id) == task["id"]
    assert entry.changes["status"] == {"from": "open", "to": "in_progress"}
    assert entry.changes["rank"] == {"from": task["rank"], "to": response.json["rank"]}
    # The creator (the manager) hears of the status change; the actor does not.
    notified = db.session.scalars(sa.select(Notification).where(Notification.type == "task_status_changed")).all()
    assert [(row.user_id, str(row.task_id)) for row in notified] == [(world["people"]["manager"].id, task["id"])]


def test_a_move_to_where_the_card_already_is_writes_nothing(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    top, below = reversed(cards(2))
    response = move(client, headers, below["id"], status="open", after_id=top["id"])
    assert response.status_code == 200
    assert response.json["version"] == 1 and response.json["rank"] == below["rank"]
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "task.move")) == 0
    )


def test_bad_neighbours_are_refused(client, auth_headers, world, cards, make_user):
    headers = auth_headers(world["people"]["member"])
    first, second = cards(2)
    elsewhere = cards(1, status="closed")[0]
    other_project = client.post(
        "/api/projects", json={"name": "Other", "key": "oth"}, headers=auth_headers(world["people"]["manager"])
    ).json
    foreign = new_task(client, auth_headers(world["people"]["manager"]), project_id=other_project["id"])
    trashed = cards(1)[0]
    db.session.execute(sa.update(Task).where(Task.id == uuid.UUID(trashed["id"])).values(deleted_at=utcnow()))
    db.session.commit()

    for field, neighbour in (
        ("after_id", MISSING),
        ("before_id", elsewhere["id"]),
        ("after_id", foreign["id"]),
        ("before_id", trashed["id"]),
        ("after_id", first["id"]),  # the card itself
    ):
        body = assert_error(
            move(client, headers, first["id"], status="open", **{field: neighbour}), 400, "validation_failed"
        )
        assert list(body["details"]) == [field]

    # Both given, but upside down or not next to each other: the client's board is stale.
    third = cards(1)[0]  # on top: third, second, first
    for after, before in ((first, second), (third, first)):
        response = move(client, headers, elsewhere["id"], status="open", after_id=after["id"], before_id=before["id"])
        assert_error(response, 409, "conflict")


def test_move_validation_version_and_tasks_without_project(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    card = cards(1)[0]
    for body in ({}, {"status": "done"}, {"status": "open", "new_status": "closed"}, {"status": "open", "x": 1}):
        assert_error(move(client, headers, card["id"], **body), 400, "validation_failed")
    assert_error(move(client, headers, card["id"], status="closed", version=7), 409, "version_conflict")
    for version in (1.5, "1", True):  # a truncating Integer would read 1.5 as 1, the current version
        assert_error(move(client, headers, card["id"], status="closed", version=version), 400, "validation_failed")
    loose = new_task(client, headers)
    assert_error(move(client, headers, loose["id"], status="closed"), 409, "conflict")
    assert_error(move(client, headers, MISSING, status="closed"), 404, "not_found")
    assert db.session.get(Task, uuid.UUID(card["id"])).status == "open"


MOVERS = [
    ("admin", 200),
    ("manager", 200),
    ("member", 200),  # the card's creator
    ("staff", 200),  # its assignee
    ("peer", 403),  # a project member, neither
    ("viewer", 403),
    ("lead", 200),  # a project manager
]


@pytest.mark.parametrize(("name", "status"), MOVERS)
def test_who_moves_a_card(client, auth_headers, world, cards, make_user, name, status):
    peer = make_user()
    response = client.post(
        f"/api/projects/{world['project']['id']}/members",
        json={"user_id": str(peer.id)},
        headers=auth_headers(world["people"]["manager"]),
    )
    assert response.status_code == 201
    card = cards(1, contact_person_id=str(world["people"]["staff"].id))[0]
    actor = peer if name == "peer" else world["people"][name]
    response = move(client, auth_headers(actor), card["id"], status="closed")
    assert response.status_code == status, response.json
    assert db.session.get(Task, uuid.UUID(card["id"])).status == ("closed" if status == 200 else "open")


def test_an_outsider_of_a_private_project_cannot_move_its_cards(client, auth_headers, world, cards):
    card = cards(1)[0]
    response = move(client, auth_headers(world["people"]["outsider"]), card["id"], status="closed")
    assert response.status_code in (403, 404)
    assert db.session.get(Task, uuid.UUID(card["id"])).status == "open"


# --- Ranks kept by the other writes ------------------------------------------------------------------------------


def test_status_changes_and_project_changes_put_the_card_on_top(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    doing = cards(2, status="in_progress")
    first, second, third = cards(3)
    assert (
        client.patch(f"/api/tasks/{first['id']}/status", json={"status": "in_progress"}, headers=headers).status_code
        == 200
    )
    assert column_ids(client, headers, world["board"], "in_progress") == [first["id"], doing[1]["id"], doing[0]["id"]]
    response = client.post(
        "/api/tasks/bulk-status",
        json={"task_ids": [second["id"], third["id"]], "status": "in_progress"},
        headers=headers,
    )
    assert response.status_code == 200 and len(response.json["updated"]) == 2
    assert column_ids(client, headers, world["board"], "in_progress") == [
        second["id"],
        third["id"],
        first["id"],
        doing[1]["id"],
        doing[0]["id"],
    ]
    ranks_now = [rank for _, rank in stored_ranks(world["project"]["id"], "in_progress")]
    assert len(set(ranks_now)) == len(ranks_now) == 5

    loose = new_task(client, headers)
    assert loose["rank"] is None
    put = client.put(f"/api/tasks/{loose['id']}", json={"project_id": world["project"]["id"]}, headers=headers)
    assert put.status_code == 200 and put.json["rank"] is not None
    assert column_ids(client, headers, world["board"])[0] == loose["id"]
    out = client.put(f"/api/tasks/{loose['id']}", json={"project_id": None}, headers=headers)
    assert out.status_code == 200 and out.json["rank"] is None


def test_keys_grown_too_long_rebalance_the_column_keeping_its_order(client, auth_headers, world, cards):
    headers = auth_headers(world["people"]["member"])
    a, b, c, d = (card["id"] for card in reversed(cards(4)))
    # a, b, c, d have the keys S, T, U, V: b and c get long ones, still in that order.
    long_low, long_high = "T" + "0" * 31 + "1", "T" + "0" * 31 + "2"
    for task_id, rank in ((b, long_low), (c, long_high)):
        db.session.execute(sa.update(Task).where(Task.id == uuid.UUID(task_id)).values(rank=rank))
    db.session.commit()
    assert column_ids(client, headers, world["board"]) == [a, b, c, d]

    response = move(client, headers, d, status="open", after_id=b)
    assert response.status_code == 200, response.json
    assert column_ids(client, headers, world["board"]) == [a, b, d, c]
    keys = {str(task_id): rank for task_id, rank in stored_ranks(world["project"]["id"], "open")}
    # The SQL rewrote a, b, c (and d, which then moved) with the keys the Python arithmetic gives four cards.
    assert [keys[a], keys[b], keys[c]] == ranks.evenly_spaced(4)[:3]
    assert keys[d] == response.json["rank"] and len(keys[d]) <= 4


# --- A move costs the same whatever the column's size ------------------------------------------------------------


def _fill_column(project_id, creator_id, count):
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "entity_name": f"Bulk {n}",
            "task_type": "Audit",
            "task_time": now,
            "status": "open",
            "priority": "medium",
            "created_by": creator_id,
            "date_created": now,
            "updated_at": now,
            "version": 1,
            "project_id": uuid.UUID(project_id),
            "rank": rank,
        }
        for n, rank in enumerate(ranks.evenly_spaced(count))
    ]
    db.session.execute(sa.insert(Task), rows)
    db.session.commit()
    return [row["id"] for row in rows]


def _statements_of(client, headers, task_id, **body):
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = move(client, headers, task_id, **body)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.json
    return len(statements)


@pytest.mark.parametrize("size", [10, 500])
def test_a_move_issues_a_constant_number_of_statements(client, auth_headers, world, size, request):
    member = world["people"]["member"]
    headers = auth_headers(member)
    column = _fill_column(world["project"]["id"], member.id, size)
    middle, last = column[size // 2], column[-1]
    counts = (
        _statements_of(client, headers, last, status="open", after_id=str(middle)),
        _statements_of(client, headers, last, status="in_progress"),
        _statements_of(client, headers, last, status="open", before_id=str(middle)),
    )
    # The same for 10 and 500 cards (the other parametrization asserts the very same figures).
    assert counts == EXPECTED_STATEMENTS[db.engine.dialect.name]


# Measured once; a change here means a move now costs more (or less): look at why before updating it.
# With the column lock. Each task loaded (the card, its neighbours, the reload for the answer) also selects its
# reminders, as it selects its tags; webhooks: the subscribers' lookup of task_moved and of task_updated; the event
# log, for each of those two events: the counters' upsert (which locks them in user order) and the events' insert.
EXPECTED_STATEMENTS = {"sqlite": (29, 30, 33), "postgresql": (29, 30, 33)}


# --- Concurrent moves -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["open", "in_progress"])
def test_concurrent_moves_into_one_gap_give_distinct_ranks_and_lose_none(app, world, cards, target):
    threads_count = 8
    above, below = cards(2, status=target)[::-1]
    movers = cards(threads_count, status="closed")
    project_id = world["project"]["id"]
    actor_id = world["people"]["member"].id
    barrier = threading.Barrier(threads_count)
    errors = []

    def run(task_id):
        with app.app_context():
            try:
                actor = db.session.get(User, actor_id)
                barrier.wait(timeout=10)
                board.move_task(actor, uuid.UUID(task_id), status=target, after_id=uuid.UUID(above["id"]))
            except Exception as error:  # reported below, with the thread's own error
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(card["id"],)) for card in movers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    column = stored_ranks(project_id, target)
    keys = [rank for _, rank in column]
    assert len(set(keys)) == len(keys) == threads_count + 2
    order = [str(task_id) for task_id, _ in column]
    assert order[0] == above["id"] and order[-1] == below["id"]
    assert set(order[1:-1]) == {card["id"] for card in movers}


# --- The 0009 migration's backfill -------------------------------------------------------------------------------


def test_migration_backfills_ranks_newest_first_per_column(app, client, auth_headers, world, cards):
    created = cards(3) + cards(2, status="closed")
    loose = new_task(client, auth_headers(world["people"]["member"]))
    start = utcnow() - timedelta(days=1)
    for n, card in enumerate(created):
        db.session.execute(
            sa.update(Task).where(Task.id == uuid.UUID(card["id"])).values(date_created=start + timedelta(minutes=n))
        )
    db.session.commit()
    db.session.remove()
    downgrade(revision="0008")
    assert "rank" not in {column["name"] for column in sa.inspect(db.engine).get_columns("tasks")}
    upgrade()
    db.session.remove()
    assert db.session.get(Task, uuid.UUID(loose["id"])).rank is None
    for status, members in (("open", created[:3]), ("closed", created[3:])):
        column = stored_ranks(world["project"]["id"], status)
        assert [str(task_id) for task_id, _ in column] == [card["id"] for card in reversed(members)]
        assert all(rank and not rank.endswith("0") for _, rank in column)


# --- Live events ------------------------------------------------------------------------------------------------


def test_join_project_is_for_readers_of_the_project(world, socket_client):
    outsider = socket_client(world["people"]["outsider"])
    ack = outsider.call("join_project", {"project_id": world["project"]["id"]}, timeout=5)
    assert ack["code"] == "not_found"
    viewer = socket_client(world["people"]["viewer"])
    assert viewer.call("join_project", {"project_id": world["project"]["id"]}, timeout=5) == {"ok": True}
    assert viewer.call("join_project", {"project_id": "nope"}, timeout=5)["code"] == "validation_failed"
    assert viewer.call("leave_project", {"project_id": world["project"]["id"]}, timeout=5) == {"ok": True}


def test_task_moved_reaches_the_project_room_and_members(client, auth_headers, world, cards, socket_client, make_user):
    client.put(
        f"/api/projects/{world['project']['id']}",
        json={"visibility": "open"},
        headers=auth_headers(world["people"]["manager"]),
    )
    card = cards(1)[0]
    watcher = socket_client(world["people"]["outsider"])  # reads the open project, is no member: joins its room
    assert watcher.call("join_project", {"project_id": world["project"]["id"]}, timeout=5) == {"ok": True}
    bystander = socket_client(make_user())  # could join the room, did not
    member = socket_client(world["people"]["viewer"])  # a member: hears it in their user room
    creator = socket_client(world["people"]["member"])

    response = move(client, auth_headers(world["people"]["member"]), card["id"], status="closed")
    assert response.status_code == 200
    expected = {
        "id": card["id"],
        "project_id": world["project"]["id"],
        "from_status": "open",
        "to_status": "closed",
        "rank": response.json["rank"],
        "version": response.json["version"],
    }
    assert watcher.wait_for("task_moved") == expected
    assert member.wait_for("task_moved") == {**expected, "seq": ANY}  # user room: with its seq in their log
    assert creator.wait_for("task_moved") == {**expected, "seq": ANY}
    assert creator.wait_for("task_updated") == {**response.json, "seq": ANY}  # as for any change
    bystander.sleep(QUIET)
    assert [event for event, _ in bystander.received if event == "task_moved"] == []


def test_project_events_reach_room_and_members(client, auth_headers, world, socket_client, make_user):
    manager = auth_headers(world["people"]["manager"])
    member = socket_client(world["people"]["member"])
    watcher = socket_client(make_user(role="manager"))  # reads every project, is in none: joins the room
    assert watcher.call("join_project", {"project_id": world["project"]["id"]}, timeout=5) == {"ok": True}
    outsider = socket_client(world["people"]["outsider"])

    updated = client.put(f"/api/projects/{world['project']['id']}", json={"name": "Closing"}, headers=manager)
    assert updated.status_code == 200
    assert member.wait_for("project_updated") == {**updated.json, "seq": ANY}
    assert watcher.wait_for("project_updated") == updated.json

    created = client.post("/api/projects", json={"name": "Fresh", "key": "fr"}, headers=manager).json
    manager_sock = socket_client(world["people"]["manager"])
    deleted = client.delete(f"/api/projects/{created['id']}", headers=manager)
    assert deleted.status_code == 204
    assert manager_sock.wait_for("project_deleted") == {"id": created["id"], "seq": ANY}

    another = client.post("/api/projects", json={"name": "Later", "key": "lt"}, headers=manager).json
    assert manager_sock.wait_for("project_created") == {**another, "seq": ANY}
    outsider.sleep(QUIET)
    assert [event for event, _ in outsider.received if event.startswith("project_")] == []


def _rooms_of(sock):
    return set(socketio.server.rooms(sock.get_sid("/"), namespace="/"))


def test_adding_and_removing_members_moves_their_live_sockets(client, auth_headers, world, socket_client, make_user):
    manager = auth_headers(world["people"]["manager"])
    newcomer = make_user()
    sock = socket_client(newcomer)
    room = f"project:{world['project']['id']}"
    assert room not in _rooms_of(sock)

    added = client.post(
        f"/api/projects/{world['project']['id']}/members", json={"user_id": str(newcomer.id)}, headers=manager
    )
    assert added.status_code == 201
    assert room in _rooms_of(sock)  # joined at once, without join_project
    client.put(f"/api/projects/{world['project']['id']}", json={"name": "Now"}, headers=manager)
    assert sock.wait_for("project_updated")["name"] == "Now"

    removed = client.delete(f"/api/projects/{world['project']['id']}/members/{newcomer.id}", headers=manager)
    assert removed.status_code == 204
    assert room not in _rooms_of(sock)
    client.put(f"/api/projects/{world['project']['id']}", json={"name": "Later"}, headers=manager)
    sock.sleep(QUIET)
    assert [data["name"] for data in sock.events("project_updated")] == ["Now"]


def test_team_membership_moves_live_sockets_too(client, auth_headers, world, socket_client, make_user):
    admin = auth_headers(world["people"]["admin"])
    newcomer = make_user()
    sock = socket_client(newcomer)
    room = f"project:{world['project']['id']}"
    team_members = f"/api/teams/{world['team']['id']}/members"
    assert (
        client.post(team_members, json={"user_id": str(newcomer.id), "role": "member"}, headers=admin).status_code
        == 201
    )
    assert room in _rooms_of(sock)
    # The lead is an explicit member too: leaving the team keeps them in the room.
    lead = world["people"]["lead"]
    lead_sock = socket_client(lead)
    explicit = client.post(
        f"/api/projects/{world['project']['id']}/members",
        json={"user_id": str(lead.id), "role": "manager"},
        headers=admin,
    )
    assert explicit.status_code == 201
    assert client.delete(f"{team_members}/{newcomer.id}", headers=admin).status_code == 204
    assert client.delete(f"{team_members}/{lead.id}", headers=admin).status_code == 204
    assert room not in _rooms_of(sock)
    assert room in _rooms_of(lead_sock)
