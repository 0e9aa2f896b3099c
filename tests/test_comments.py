"""Comments API through HTTP: the thread, posting, editing, deleting, permissions, notifications, mentions, audit."""

import uuid
from unittest.mock import ANY

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack.audit.models import AuditLog
from finstack.comments import service as comments_service
from finstack.comments.models import Comment
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tasks.models import Task
from finstack.users import service as users

FUTURE = "2030-06-01T09:00:00+00:00"
COMMENT_FIELDS = {
    "id",
    "task_id",
    "author_id",
    "author",
    "content",
    "created_at",
    "updated_at",
    "edited",
    "edited_at",
}


@pytest.fixture
def creator(make_user):
    return make_user(username="carla")


@pytest.fixture
def assignee(make_user):
    return make_user(username="ahmed")


@pytest.fixture
def outsider(make_user):
    """A member who neither created nor holds the task."""
    return make_user(username="olga")


@pytest.fixture
def task_id(client, auth_headers, creator, assignee):
    response = client.post(
        "/api/tasks",
        json={
            "entity_name": "Acme Ltd",
            "task_type": "Call",
            "task_time": FUTURE,
            "contact_person_id": str(assignee.id),
        },
        headers=auth_headers(creator),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def comments_url(task_id, comment_id=None):
    url = f"/api/tasks/{task_id}/comments"
    return f"{url}/{comment_id}" if comment_id else url


def post_comment(client, headers, task_id, content="Called the client."):
    response = client.post(comments_url(task_id), json={"content": content}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def notifications():
    """(recipient id, type) for every stored notification, read through a session of its own."""
    with Session(db.engine) as session:
        return sorted(
            (str(user_id), kind)
            for user_id, kind in session.execute(
                # The fixtures' tasks are created assigned, which notifies the assignee: not under test here.
                sa.select(Notification.user_id, Notification.type).where(Notification.type != "task_assigned")
            )
        )


def audit_entries(action):
    with Session(db.engine) as session:
        return session.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


def comment_count():
    with Session(db.engine) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Comment))


# --- reading and posting --------------------------------------------------------------------------------------------


def test_post_returns_the_comment_with_its_author(client, auth_headers, task_id, outsider):
    body = post_comment(client, auth_headers(outsider), task_id, "  Spoke to Jane; invoice follows.  ")

    assert set(body) == COMMENT_FIELDS
    assert body["task_id"] == task_id
    assert body["author_id"] == str(outsider.id)
    assert body["author"] == {"id": str(outsider.id), "username": outsider.username, "full_name": outsider.full_name}
    assert body["content"] == "  Spoke to Jane; invoice follows.  "
    assert body["edited"] is False
    assert body["edited_at"] is None
    assert body["created_at"].endswith("+00:00")


def test_list_is_an_envelope_oldest_first(client, auth_headers, task_id, creator, assignee, outsider):
    for number, author in enumerate((creator, assignee, outsider, creator, assignee)):
        post_comment(client, auth_headers(author), task_id, f"comment {number}")

    response = client.get(comments_url(task_id), headers=auth_headers(outsider))
    assert response.status_code == 200
    assert [item["content"] for item in response.json["items"]] == [f"comment {n}" for n in range(5)]
    assert response.json["pagination"] == {
        "page": 1, "per_page": 20, "total": 5, "pages": 1, "total_exact": True, "next_cursor": None
    }

    second = client.get(comments_url(task_id) + "?page=2&per_page=2", headers=auth_headers(outsider)).json
    assert [item["content"] for item in second["items"]] == ["comment 2", "comment 3"]
    assert second["pagination"] == {
        "page": 2, "per_page": 2, "total": 5, "pages": 3, "total_exact": True, "next_cursor": ANY
    }


def test_list_shows_only_that_tasks_comments(client, auth_headers, task_id, creator):
    other = client.post(
        "/api/tasks",
        json={"entity_name": "Other", "task_type": "Call", "task_time": FUTURE},
        headers=auth_headers(creator),
    ).json["id"]
    post_comment(client, auth_headers(creator), task_id, "on the first")
    post_comment(client, auth_headers(creator), other, "on the other")

    items = client.get(comments_url(other), headers=auth_headers(creator)).json["items"]
    assert [item["content"] for item in items] == ["on the other"]


def test_list_costs_the_same_queries_whatever_the_number_of_authors(client, auth_headers, task_id, make_user, creator):
    def queries_to_list():
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = client.get(comments_url(task_id), headers=auth_headers(creator))
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        return len(response.json["items"]), len(statements)

    post_comment(client, auth_headers(make_user()), task_id)
    one = queries_to_list()
    for _ in range(6):
        post_comment(client, auth_headers(make_user()), task_id)
    seven = queries_to_list()
    assert (one[0], seven[0]) == (1, 7)
    assert seven[1] == one[1]


@pytest.mark.parametrize("role", ["member", "manager", "admin"])
def test_every_user_may_read_and_comment_on_any_task(client, auth_headers, make_user, task_id, role):
    user = make_user(role=role)
    assert client.get(comments_url(task_id), headers=auth_headers(user)).status_code == 200
    assert client.post(comments_url(task_id), json={"content": "hi"}, headers=auth_headers(user)).status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": "   \n "}, "content"),
        ({"content": "x" * 5001}, "content"),
        ({"content": None}, "content"),
        ({"content": "ok", "author_id": str(uuid.uuid4())}, "author_id"),
    ],
)
def test_invalid_content_is_refused(client, auth_headers, task_id, creator, payload, field):
    response = client.post(comments_url(task_id), json=payload, headers=auth_headers(creator))
    assert response.status_code == 400
    assert response.json["error"] == "Validation failed"
    assert field in response.json["details"]
    assert comment_count() == 0


def test_content_of_exactly_the_limit_is_accepted(client, auth_headers, task_id, creator):
    assert len(post_comment(client, auth_headers(creator), task_id, "x" * 5000)["content"]) == 5000


def test_unauthenticated_requests_are_refused(client, task_id):
    cid = uuid.uuid4()
    assert client.get(comments_url(task_id)).status_code == 401
    assert client.post(comments_url(task_id), json={"content": "hi"}).status_code == 401
    assert client.patch(comments_url(task_id, cid), json={"content": "hi"}).status_code == 401
    assert client.delete(comments_url(task_id, cid)).status_code == 401


def test_unknown_task_or_comment_is_404(client, auth_headers, task_id, creator):
    headers = auth_headers(creator)
    comment = post_comment(client, headers, task_id)
    other_task = client.post(
        "/api/tasks",
        json={"entity_name": "Other", "task_type": "Call", "task_time": FUTURE},
        headers=headers,
    ).json["id"]
    missing = str(uuid.uuid4())

    assert client.get(comments_url(missing), headers=headers).status_code == 404
    assert client.post(comments_url(missing), json={"content": "x"}, headers=headers).status_code == 404
    for url in (
        comments_url(missing, comment["id"]),  # unknown task
        comments_url(task_id, missing),  # unknown comment
        comments_url(other_task, comment["id"]),  # the comment belongs to another task
    ):
        patched = client.patch(url, json={"content": "changed"}, headers=headers)
        assert patched.status_code == 404
        assert set(patched.json) == {"error", "code", "details"}
        assert client.delete(url, headers=headers).status_code == 404
    assert client.get(comments_url(task_id), headers=headers).json["items"][0]["content"] == comment["content"]


# --- editing --------------------------------------------------------------------------------------------------------


def test_author_edits_their_comment(client, auth_headers, task_id, outsider):
    comment = post_comment(client, auth_headers(outsider), task_id, "first draft")

    response = client.patch(
        comments_url(task_id, comment["id"]), json={"content": "final words"}, headers=auth_headers(outsider)
    )
    assert response.status_code == 200
    assert response.json["content"] == "final words"
    assert response.json["edited"] is True
    assert response.json["edited_at"] is not None
    assert response.json["created_at"] == comment["created_at"]

    entries = audit_entries("comment.update")
    assert len(entries) == 1
    assert entries[0].actor_id == outsider.id
    assert entries[0].entity_type == "comment"
    assert str(entries[0].entity_id) == comment["id"]
    assert entries[0].changes == {"task_id": task_id, "content": {"from": "first draft", "to": "final words"}}


@pytest.mark.parametrize("role", ["member", "manager", "admin"])
def test_only_the_author_may_edit(client, auth_headers, make_user, task_id, outsider, role):
    comment = post_comment(client, auth_headers(outsider), task_id, "mine")
    response = client.patch(
        comments_url(task_id, comment["id"]), json={"content": "not yours"}, headers=auth_headers(make_user(role=role))
    )
    assert response.status_code == 403
    assert set(response.json) == {"error", "code", "details"}
    assert client.get(comments_url(task_id), headers=auth_headers(outsider)).json["items"][0]["content"] == "mine"
    assert audit_entries("comment.update") == []


def test_edit_validates_content(client, auth_headers, task_id, outsider):
    comment = post_comment(client, auth_headers(outsider), task_id)
    for payload in ({}, {"content": ""}, {"content": "y" * 5001}, {"content": "ok", "edited": True}):
        response = client.patch(comments_url(task_id, comment["id"]), json=payload, headers=auth_headers(outsider))
        assert response.status_code == 400, payload


# --- deleting -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["author", "manager", "admin"])
def test_author_manager_or_admin_deletes(client, auth_headers, task_id, outsider, manager, admin, who):
    comment = post_comment(client, auth_headers(outsider), task_id, "to be removed")
    actor = {"author": outsider, "manager": manager, "admin": admin}[who]

    response = client.delete(comments_url(task_id, comment["id"]), headers=auth_headers(actor))
    assert response.status_code == 204
    assert response.data == b""
    assert comment_count() == 0

    entries = audit_entries("comment.delete")
    assert len(entries) == 1
    assert entries[0].actor_id == actor.id
    assert str(entries[0].entity_id) == comment["id"]
    assert entries[0].changes == {"task_id": task_id, "author_id": str(outsider.id), "content": "to be removed"}


@pytest.mark.parametrize("who", ["other member", "task creator", "task assignee"])
def test_other_members_may_not_delete(client, auth_headers, make_user, task_id, outsider, creator, assignee, who):
    comment = post_comment(client, auth_headers(outsider), task_id)
    actor = {"other member": make_user(), "task creator": creator, "task assignee": assignee}[who]

    response = client.delete(comments_url(task_id, comment["id"]), headers=auth_headers(actor))
    assert response.status_code == 403
    assert comment_count() == 1
    assert audit_entries("comment.delete") == []


def test_delete_for_tasks_removes_every_comment_of_those_tasks(app, client, auth_headers, task_id, creator):
    other = client.post(
        "/api/tasks",
        json={"entity_name": "Other", "task_type": "Call", "task_time": FUTURE},
        headers=auth_headers(creator),
    ).json["id"]
    for _ in range(3):
        post_comment(client, auth_headers(creator), task_id)
    post_comment(client, auth_headers(creator), other, "stays")

    assert comments_service.delete_for_tasks([uuid.UUID(task_id)]) == 3
    db.session.execute(sa.delete(Task).where(Task.id == uuid.UUID(task_id)))
    db.session.commit()

    with Session(db.engine) as session:
        assert session.scalars(sa.select(Comment.content)).all() == ["stays"]


# --- audit and notifications ----------------------------------------------------------------------------------------


def test_posting_is_audited(client, auth_headers, task_id, outsider):
    comment = post_comment(client, auth_headers(outsider), task_id, "audited")
    entries = audit_entries("comment.create")
    assert len(entries) == 1
    assert entries[0].actor_id == outsider.id
    assert entries[0].entity_type == "comment"
    assert str(entries[0].entity_id) == comment["id"]
    assert entries[0].changes == {"task_id": task_id, "content": "audited"}


def test_comment_notifies_creator_and_assignee_not_the_author(
    client, auth_headers, task_id, creator, assignee, outsider
):
    post_comment(client, auth_headers(outsider), task_id, "Any news?")

    assert notifications() == sorted([(str(creator.id), "task_commented"), (str(assignee.id), "task_commented")])
    inbox = client.get("/api/notifications", headers=auth_headers(creator)).json["items"]
    assert len(inbox) == 1
    assert inbox[0]["type"] == "task_commented"
    assert inbox[0]["task_id"] == task_id
    assert inbox[0]["actor_id"] == str(outsider.id)
    assert outsider.full_name in inbox[0]["title"]
    assert "Acme Ltd" in inbox[0]["title"]
    assert inbox[0]["message"] == "Any news?"
    assert client.get("/api/notifications", headers=auth_headers(outsider)).json["items"] == []


def test_comment_by_the_creator_notifies_only_the_assignee(client, auth_headers, task_id, creator, assignee):
    post_comment(client, auth_headers(creator), task_id)
    assert notifications() == [(str(assignee.id), "task_commented")]


def test_comment_by_the_assignee_notifies_only_the_creator(client, auth_headers, task_id, creator, assignee):
    post_comment(client, auth_headers(assignee), task_id)
    assert notifications() == [(str(creator.id), "task_commented")]


def test_comment_on_an_unassigned_task_notifies_its_creator(client, auth_headers, creator, outsider):
    task = client.post(
        "/api/tasks",
        json={"entity_name": "Solo", "task_type": "Call", "task_time": FUTURE},
        headers=auth_headers(creator),
    ).json["id"]
    post_comment(client, auth_headers(outsider), task)
    assert notifications() == [(str(creator.id), "task_commented")]
    post_comment(client, auth_headers(creator), task)
    assert notifications() == [(str(creator.id), "task_commented")]


def test_mention_notifies_the_mentioned_user(client, auth_headers, task_id, creator, assignee, make_user):
    bob = make_user(username="bob.smith")
    post_comment(client, auth_headers(creator), task_id, "@bob.smith can you check the VAT figure?")

    assert notifications() == sorted([(str(bob.id), "mentioned"), (str(assignee.id), "task_commented")])
    inbox = client.get("/api/notifications", headers=auth_headers(bob)).json["items"]
    assert [item["type"] for item in inbox] == ["mentioned"]
    assert creator.full_name in inbox[0]["title"]
    assert inbox[0]["task_id"] == task_id


def test_a_mentioned_owner_gets_the_mention_only(client, auth_headers, task_id, creator, assignee, outsider):
    post_comment(client, auth_headers(outsider), task_id, f"@{assignee.username} please call back")
    assert notifications() == sorted([(str(assignee.id), "mentioned"), (str(creator.id), "task_commented")])


def test_mentions_are_resolved_exactly(client, auth_headers, task_id, creator, assignee, make_user):
    ann = make_user(username="ann")
    annie = make_user(username="annie-b")
    gone = make_user(username="gone")
    users.set_active(gone, False)
    make_user(username="silent")

    post_comment(
        client,
        auth_headers(creator),
        task_id,
        "Thanks @ann. Also @annie-b, @ann again, @gone, @nobody, write to silent@example.com and @carla.",
    )

    # Each person once; the author (@carla) is never notified; inactive, unknown and e-mail addresses are ignored.
    assert notifications() == sorted(
        [(str(ann.id), "mentioned"), (str(annie.id), "mentioned"), (str(assignee.id), "task_commented")]
    )


def test_mentions_are_looked_up_in_one_query(client, auth_headers, task_id, creator, make_user):
    for name in ("ann", "ben", "cat", "dan"):
        make_user(username=name)
    statements = []

    def record(conn, cursor, statement, *args):
        if "FROM users" in statement and "username IN" in statement:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        post_comment(client, auth_headers(creator), task_id, "@ann @ben @cat @dan @eve")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert len(notifications()) == 5  # four mentions and the assignee


def test_edit_notifies_only_newly_mentioned_users(client, auth_headers, task_id, creator, make_user):
    ann = make_user(username="ann")
    ben = make_user(username="ben")
    comment = post_comment(client, auth_headers(creator), task_id, "@ann see this")
    before = notifications()

    response = client.patch(
        comments_url(task_id, comment["id"]),
        json={"content": "@ann and @ben see this, and @carla"},
        headers=auth_headers(creator),
    )
    assert response.status_code == 200
    # ann was already mentioned and the task's people heard of the comment when it was posted.
    assert notifications() == sorted([*before, (str(ben.id), "mentioned")])
    assert (str(ann.id), "mentioned") in before


def test_refused_comment_writes_nothing(client, auth_headers, task_id, outsider, make_user):
    comment = post_comment(client, auth_headers(outsider), task_id)
    before = notifications()
    intruder = make_user(username="mallory")
    client.patch(
        comments_url(task_id, comment["id"]), json={"content": "@ahmed hacked"}, headers=auth_headers(intruder)
    )
    assert notifications() == before
