"""The trash: delete moves a task there, out of every read path; the trash listing, restore, and the purge."""

import io
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from unittest.mock import ANY

import pytest
import sqlalchemy as sa

from finstack.attachments.models import Attachment
from finstack.audit.models import AuditLog
from finstack.chat.models import ChatAttachment, Conversation, Message
from finstack.comments.models import Comment
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tasks import overdue
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.tasks.signals import tasks_purged
from tests.test_operator import environment

ROOT = Path(__file__).resolve().parent.parent
FUTURE = "2030-01-01T09:00:00+00:00"
PAST = "2020-01-01T09:00:00+00:00"
PDF = b"%PDF-1.4\n" + b"0" * 100 + b"\n%%EOF\n"
QUIET = 0.3


@pytest.fixture
def api(client, auth_headers):
    def call(user, method, path, **kwargs):
        return client.open(path, method=method, headers=auth_headers(user), **kwargs)

    return call


@pytest.fixture
def create(api):
    def make(user, **fields):
        body = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": FUTURE, **fields}
        response = api(user, "POST", "/api/tasks", json=body)
        assert response.status_code == 201, response.json
        return response.json

    return make


def upload(api, user, path, name="contract.pdf", data=PDF):
    return api(user, "POST", path, data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def files_in(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def task_ids(body):
    return [item["id"] for item in body["items"]]


def trash(api, user, **query):
    response = api(user, "GET", "/api/tasks/trash", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def trashed_days_ago(task_id, days):
    db.session.execute(
        sa.update(Task).where(Task.id == uuid.UUID(task_id)).values(deleted_at=utcnow() - timedelta(days=days))
    )
    db.session.commit()


# --- gone from every read path -------------------------------------------------------------------------------------


def test_a_trashed_task_is_gone_from_every_read_path(api, create, manager, member, make_user):
    assignee = make_user()
    project = api(manager, "POST", "/api/projects", json={"name": "Books", "key": "BKS"}).json
    fields = {"contact_person_id": str(assignee.id), "tags": ["vat"], "project_id": project["id"]}
    gone = create(manager, task_time=PAST, **fields)
    kept = create(manager, task_time=FUTURE, **fields)
    thread = api(manager, "GET", f"/api/chat/tasks/{gone['id']}/conversation").json
    assert api(manager, "DELETE", f"/api/tasks/{gone['id']}").status_code == 204

    url = f"/api/tasks/{gone['id']}"
    assert api(member, "GET", url).status_code == 404
    assert api(manager, "PUT", url, json={"note": "x"}).status_code == 404
    assert api(manager, "PATCH", f"{url}/status", json={"status": "closed"}).status_code == 404
    assert api(manager, "DELETE", url).status_code == 404
    assert api(manager, "GET", f"{url}/comments").status_code == 404
    assert api(manager, "POST", f"{url}/comments", json={"content": "hello"}).status_code == 404
    assert api(manager, "GET", f"{url}/attachments").status_code == 404
    assert upload(api, manager, f"{url}/attachments").status_code == 404
    assert api(manager, "GET", f"/api/chat/tasks/{gone['id']}/conversation").status_code == 404
    assert api(manager, "GET", f"/api/chat/conversations/{thread['id']}/messages").status_code == 404
    sent = api(manager, "POST", f"/api/chat/conversations/{thread['id']}/messages", json={"content": "x"})
    assert sent.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0

    assert task_ids(api(manager, "GET", "/api/tasks").json) == [kept["id"]]
    assert api(manager, "GET", "/api/tasks", query_string={"overdue": "true"}).json["pagination"]["total"] == 0
    assert task_ids(api(manager, "GET", "/api/tasks", query_string={"tag": "vat"}).json) == [kept["id"]]
    summary = api(manager, "GET", "/api/analytics/dashboard").json["summary"]
    assert (summary["total_tasks"], summary["overdue_tasks"]) == (1, 0)
    assert api(manager, "GET", "/api/tags").json["items"] == [{"tag": "vat", "count": 1}]
    progress = api(manager, "GET", f"/api/projects/{project['id']}/progress").json
    assert (progress["total_tasks"], progress["overdue_tasks"]) == (1, 0)
    report = api(manager, "GET", "/api/reports/user-productivity", query_string={"user_id": str(assignee.id)}).json
    assert (report["items"][0]["total_tasks_assigned"], report["items"][0]["overdue_tasks"]) == (1, 0)
    assert api(manager, "GET", "/api/reports/team-overview").json["total_tasks"] == 1
    assert overdue.count_overdue().overdue_tasks == 0
    assert overdue.sweep(utcnow()).notified_tasks == 0

    bulk = api(manager, "POST", "/api/tasks/bulk-status", json={"task_ids": [gone["id"]], "status": "closed"}).json
    assert bulk == {"updated": [], "not_found": [gone["id"]], "forbidden": []}
    deleted = api(manager, "POST", "/api/tasks/bulk-delete", json={"task_ids": [gone["id"], kept["id"]]}).json
    assert deleted == {"deleted": [kept["id"]], "not_found": [gone["id"]]}


def test_delete_is_audited_and_bumps_the_version(api, create, member):
    task = create(member)
    assert api(member, "DELETE", f"/api/tasks/{task['id']}").status_code == 204
    row = db.session.get(Task, uuid.UUID(task["id"]))
    assert (row.version, row.deleted_by) == (2, member.id)
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "task.trash"))
    assert (entry.entity_id, entry.actor_id, entry.changes["entity_name"]) == (row.id, member.id, "Acme Ltd")


def test_bulk_delete_moves_to_the_trash(api, create, manager, member):
    ids = [create(member)["id"] for _ in range(3)]
    response = api(manager, "POST", "/api/tasks/bulk-delete", json={"task_ids": ids[:2]})
    assert response.json == {"deleted": ids[:2], "not_found": []}
    assert task_ids(api(manager, "GET", "/api/tasks").json) == [ids[2]]
    assert sorted(task_ids(trash(api, manager))) == sorted(ids[:2])
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "task.bulk_trash"))
    assert sorted(entry.changes["task_ids"]) == sorted(ids[:2])


# --- the trash listing ---------------------------------------------------------------------------------------------


def test_members_see_the_trashed_tasks_they_created_managers_all(api, create, admin, manager, member, make_user):
    other = make_user()
    mine = create(member)
    theirs = create(other)
    create(member)  # live: never in the trash
    assert api(member, "DELETE", f"/api/tasks/{mine['id']}").status_code == 204
    time.sleep(0.01)
    assert api(manager, "DELETE", f"/api/tasks/{theirs['id']}").status_code == 204  # trashed by a manager

    assert task_ids(trash(api, member)) == [mine["id"]]
    assert task_ids(trash(api, other)) == [theirs["id"]]
    for boss in (manager, admin):
        assert task_ids(trash(api, boss)) == [theirs["id"], mine["id"]]  # most recently trashed first
    page = trash(api, manager, per_page=1, page=2)
    assert task_ids(page) == [mine["id"]]
    assert page["pagination"] == {
        "page": 2, "per_page": 1, "total": 2, "pages": 2, "total_exact": True, "next_cursor": None
    }
    item = trash(api, manager)["items"][0]
    assert set(item) == set(theirs) | {"deleted_at", "deleted_by"}
    assert (item["deleted_by"], item["version"], item["entity_name"]) == (str(manager.id), 2, theirs["entity_name"])
    assert item["deleted_at"].endswith("+00:00")


def test_the_trash_refuses_unknown_query_fields(api, member):
    assert api(member, "GET", "/api/tasks/trash", query_string={"status": "open"}).status_code == 400


# --- restore ---------------------------------------------------------------------------------------------------------


def test_restore_brings_the_task_back_whole(app, api, create, member, make_user):
    colleague = make_user()
    task = create(member, contact_person_id=str(colleague.id))
    url = f"/api/tasks/{task['id']}"
    assert api(colleague, "POST", f"{url}/comments", json={"content": "Called them"}).status_code == 201
    attachment = upload(api, member, f"{url}/attachments").json
    thread = api(member, "GET", f"/api/chat/tasks/{task['id']}/conversation").json
    messages_url = f"/api/chat/conversations/{thread['id']}/messages"
    chat_file = upload(api, member, f"/api/chat/conversations/{thread['id']}/attachments", "notes.pdf").json
    sent = api(member, "POST", messages_url, json={"content": "see file", "attachment_id": chat_file["id"]})
    assert sent.status_code == 201
    assert api(member, "DELETE", url).status_code == 204
    assert api(member, "GET", url).status_code == 404

    restored = api(member, "POST", f"{url}/restore")
    assert restored.status_code == 200, restored.json
    assert restored.json["version"] == 3  # trashed, then restored
    assert "deleted_at" not in restored.json
    assert api(member, "GET", url).json == restored.json
    assert task_ids(api(member, "GET", "/api/tasks").json) == [task["id"]]
    assert trash(api, member)["items"] == []
    assert [c["content"] for c in api(member, "GET", f"{url}/comments").json["items"]] == ["Called them"]
    download = api(colleague, "GET", f"{url}/attachments/{attachment['id']}/download")
    assert download.status_code == 200 and download.data == PDF
    assert [m["content"] for m in api(colleague, "GET", messages_url).json["items"]] == ["see file"]
    chat_url = f"/api/chat/conversations/{thread['id']}/attachments/{chat_file['id']}/download"
    chat_download = api(colleague, "GET", chat_url)
    assert chat_download.status_code == 200 and chat_download.data == PDF
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "task.restore"))
    assert (entry.entity_id, entry.actor_id, entry.changes["deleted_by"]) == (
        uuid.UUID(task["id"]),
        member.id,
        str(member.id),
    )
    assert api(member, "POST", f"{url}/restore").status_code == 404  # no longer in the trash


@pytest.mark.parametrize(
    ("who", "status"), [("creator", 200), ("other member", 403), ("assignee", 403), ("manager", 200), ("admin", 200)]
)
def test_who_may_restore(api, create, admin, manager, member, make_user, who, status):
    people = {"creator": member, "other member": make_user(), "assignee": make_user()}
    people.update({"manager": manager, "admin": admin})
    task = create(member, contact_person_id=str(people["assignee"].id))
    assert api(manager, "DELETE", f"/api/tasks/{task['id']}").status_code == 204
    response = api(people[who], "POST", f"/api/tasks/{task['id']}/restore")
    assert response.status_code == status, response.json
    assert (db.session.get(Task, uuid.UUID(task["id"])).deleted_at is None) == (status == 200)


def test_restore_of_a_live_or_unknown_task_is_404(api, create, manager):
    live = create(manager)
    for task_id in (live["id"], str(uuid.uuid4())):
        response = api(manager, "POST", f"/api/tasks/{task_id}/restore")
        assert response.status_code == 404 and response.json["code"] == "not_found"


def test_a_task_of_a_deleted_project_is_restored_in_no_project(api, create, manager):
    project = api(manager, "POST", "/api/projects", json={"name": "Books", "key": "BKS"}).json
    task = create(manager, project_id=project["id"])
    assert api(manager, "DELETE", f"/api/projects/{project['id']}?cascade=true").status_code == 204
    restored = api(manager, "POST", f"/api/tasks/{task['id']}/restore")
    assert restored.status_code == 200 and restored.json["project_id"] is None


def test_live_clients_hear_the_delete_and_the_restore(api, create, member, manager, socket_client):
    task = create(member)
    creator = socket_client(member)
    assert api(manager, "DELETE", f"/api/tasks/{task['id']}").status_code == 204
    assert creator.wait_for("task_deleted") == {"id": task["id"], "seq": ANY}
    restored = api(manager, "POST", f"/api/tasks/{task['id']}/restore").json
    assert creator.wait_for("task_restored") == {**restored, "seq": ANY}
    time.sleep(QUIET)
    assert [event for event, _ in creator.received if event.startswith("task_")] == ["task_deleted", "task_restored"]


# --- purge -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def purge_scene(app, api, create, member, manager):
    """An old trashed task with a comment, an attachment, a chat message and a chat file; a recent one; a live one."""
    old, recent, live = create(member), create(member), create(member)
    url = f"/api/tasks/{old['id']}"
    api(manager, "POST", f"{url}/comments", json={"content": "note"})
    upload(api, member, f"{url}/attachments")
    thread = api(member, "GET", f"/api/chat/tasks/{old['id']}/conversation").json
    chat_file = upload(api, member, f"/api/chat/conversations/{thread['id']}/attachments", "notes.pdf").json
    api(member, "POST", f"/api/chat/conversations/{thread['id']}/messages", json={"attachment_id": chat_file["id"]})
    upload(api, member, f"/api/tasks/{live['id']}/attachments")
    for task in (old, recent):
        assert api(member, "DELETE", f"/api/tasks/{task['id']}").status_code == 204
    trashed_days_ago(old["id"], 31)
    trashed_days_ago(recent["id"], 29)
    return {"old": old["id"], "recent": recent["id"], "live": live["id"], "folder": Path(app.config["UPLOAD_FOLDER"])}


def counts():
    return {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Task, Comment, Attachment, Conversation, Message, ChatAttachment, Notification)
    }


def purge(runner, *options):
    result = runner.invoke(args=["tasks", "purge-trash", *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_purge_deletes_old_trash_for_good_with_rows_and_files(runner, purge_scene):
    folder = purge_scene["folder"]
    assert len(files_in(folder)) == 3
    assert counts()["Comment"] == 1
    live_file = db.session.scalar(
        sa.select(Attachment.stored_name).where(Attachment.task_id == uuid.UUID(purge_scene["live"]))
    )

    output = purge(runner)  # --older-than 30 by default
    assert "Purged: 1 tasks" in output
    remaining = set(db.session.scalars(sa.select(Task.id)))
    assert remaining == {uuid.UUID(purge_scene["recent"]), uuid.UUID(purge_scene["live"])}
    assert {key: value for key, value in counts().items() if key != "Task"} == {
        "Comment": 0,
        "Attachment": 1,
        "Conversation": 0,
        "Message": 0,
        "ChatAttachment": 0,
        "Notification": 0,
    }
    assert files_in(folder) == [live_file]

    assert "Purged: 0 tasks" in purge(runner)  # idempotent
    assert "Purged: 1 tasks" in purge(runner, "--older-than", "0")
    assert set(db.session.scalars(sa.select(Task.id))) == {uuid.UUID(purge_scene["live"])}
    entries = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "task.purge")).all()
    assert sorted(entry.changes["purged"] for entry in entries) == [0, 1, 1]
    assert all(entry.actor_label.startswith("cli:") and entry.actor_id is None for entry in entries)


def test_purge_respects_older_than(runner, purge_scene):
    assert "Purged: 0 tasks" in purge(runner, "--older-than", "40")
    assert "Purged: 2 tasks" in purge(runner, "--older-than", "28")
    assert purge_scene["live"] in {str(task_id) for task_id in db.session.scalars(sa.select(Task.id))}


def test_purge_refuses_a_negative_age(runner):
    result = runner.invoke(args=["tasks", "purge-trash", "--older-than", "-1"])
    assert result.exit_code == 2 and "-1" in result.output


def test_purge_goes_in_batches_and_reports_progress(app, api, create, manager):
    ids = [create(manager)["id"] for _ in range(5)]
    api(manager, "POST", "/api/tasks/bulk-delete", json={"task_ids": ids})
    reported = []
    assert tasks.purge_trash(utcnow(), batch_size=2, progress=reported.append) == 5
    assert reported == [2, 2, 1]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


def test_purge_as_a_real_flask_command(app, app_config, purge_scene, tmp_path):
    env = environment(
        tmp_path, DATABASE_URL=app_config["SQLALCHEMY_DATABASE_URI"], UPLOAD_FOLDER=app_config["UPLOAD_FOLDER"]
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "tasks", "purge-trash", "--older-than", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "Purged: 2 tasks" in result.stdout
    db.session.expire_all()
    assert [str(task_id) for task_id in db.session.scalars(sa.select(Task.id))] == [purge_scene["live"]]
    assert len(files_in(purge_scene["folder"])) == 1


def test_a_restored_task_is_not_purged(api, create, manager):
    task = create(manager)
    api(manager, "DELETE", f"/api/tasks/{task['id']}")
    assert api(manager, "POST", f"/api/tasks/{task['id']}/restore").status_code == 200
    assert tasks.purge_trash(utcnow()) == 0
    assert api(manager, "GET", f"/api/tasks/{task['id']}").status_code == 200


def test_the_purge_skips_a_task_a_restore_holds(app, api, create, manager):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    held, free = create(manager), create(manager)
    api(manager, "POST", "/api/tasks/bulk-delete", json={"task_ids": [held["id"], free["id"]]})
    with db.engine.connect() as other, other.begin():
        other.execute(sa.select(Task.id).where(Task.id == uuid.UUID(held["id"])).with_for_update())
        assert tasks.purge_trash(utcnow()) == 1  # at once, without waiting for the lock
    assert [str(task_id) for task_id in db.session.scalars(sa.select(Task.id))] == [held["id"]]
    assert tasks.purge_trash(utcnow()) == 1


# --- the cascade by signal -------------------------------------------------------------------------------------------


def test_the_task_service_imports_no_domain_that_hangs_off_tasks():
    probe = (
        "import sys; import finstack.tasks.service; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['finstack', 'comments'], ['finstack', 'attachments'], ['finstack', 'chat'])))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["tasks.service", "comments.service", "attachments.service", "chat.files"])
def test_each_service_imports_alone(module):
    probe = f"import finstack.{module}"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_comments_attachments_and_chat_listen_for_purges(app):
    receivers = {receiver.__module__ for receiver in tasks_purged.receivers_for(app)}
    assert receivers == {"finstack.comments.service", "finstack.attachments.service", "finstack.chat.files"}
