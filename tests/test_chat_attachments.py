"""Chat attachments: the task attachments' rules (allow-list, sniffed content, size), members only, files = rows."""

import io
import struct
import uuid
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack.chat import conversations, files
from finstack.chat.models import ChatAttachment
from finstack.extensions import db

MB = 1024 * 1024


@pytest.fixture
def app_config(app_config):
    """A 1 MB upload limit, so the limit is tested with small files."""
    return {**app_config, "MAX_UPLOAD_MB": 1}


@pytest.fixture
def api(client, auth_headers):
    def call(user, method, path, **kwargs):
        return client.open(f"/api/chat{path}", method=method, headers=auth_headers(user), **kwargs)

    return call


@pytest.fixture
def chat_folder(app):
    return Path(app.config["UPLOAD_FOLDER"]) / "chat"


@pytest.fixture
def alice(make_user):
    return make_user()


@pytest.fixture
def bob(make_user):
    return make_user()


@pytest.fixture
def carol(make_user):
    return make_user()


@pytest.fixture
def conversation_id(api, alice, bob):
    return api(alice, "POST", "/conversations", json={"participant_ids": [str(bob.id)]}).json["id"]


def png_bytes():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))


def upload(api, user, conversation_id, name, data):
    return api(
        user,
        "POST",
        f"/conversations/{conversation_id}/attachments",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def files_in(folder):
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def rows():
    with Session(db.engine) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ChatAttachment))


def test_upload_send_and_download(api, alice, bob, conversation_id, chat_folder):
    data = png_bytes()
    response = upload(api, alice, conversation_id, "Q3 chart.PNG", data)
    assert response.status_code == 201
    attachment = response.json
    # The same names as a task attachment's, the parent id aside.
    assert set(attachment) == {
        "id",
        "conversation_id",
        "uploader_id",
        "uploader",
        "original_name",
        "content_type",
        "size_bytes",
        "created_at",
        "download_url",
    }
    assert attachment["original_name"] == "Q3_chart.png"
    assert attachment["content_type"] == "image/png" and attachment["size_bytes"] == len(data)
    assert attachment["uploader_id"] == str(alice.id) and attachment["uploader"]["id"] == str(alice.id)
    download_url = f"/api/chat/conversations/{conversation_id}/attachments/{attachment['id']}/download"
    assert attachment["download_url"] == download_url
    stored = files_in(chat_folder)
    assert len(stored) == 1 and stored[0].endswith(".png") and "chart" not in stored[0]

    sent = api(alice, "POST", f"/conversations/{conversation_id}/messages", json={"attachment_id": attachment["id"]})
    assert sent.status_code == 201
    assert sent.json["message_type"] == "attachment" and sent.json["content"] == ""
    assert sent.json["attachment"] == attachment

    download = api(bob, "GET", f"/conversations/{conversation_id}/attachments/{attachment['id']}/download")
    assert download.status_code == 200
    assert download.data == data
    assert download.mimetype == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "Q3_chart.png" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"

    listing = api(bob, "GET", f"/conversations/{conversation_id}/messages").json["items"]
    assert listing[0]["attachment"]["id"] == attachment["id"]


def test_members_only(api, alice, bob, carol, conversation_id, chat_folder):
    refused = upload(api, carol, conversation_id, "notes.txt", b"hello")
    assert refused.status_code == 404
    assert files_in(chat_folder) == [] and rows() == 0

    attachment_id = upload(api, alice, conversation_id, "notes.txt", b"hello").json["id"]
    path = f"/conversations/{conversation_id}/attachments/{attachment_id}/download"
    assert api(carol, "GET", path).status_code == 404
    # An attachment is only reachable through its own conversation.
    own = api(carol, "POST", "/conversations", json={"participant_ids": [str(alice.id)]}).json["id"]
    assert api(carol, "GET", f"/conversations/{own}/attachments/{attachment_id}/download").status_code == 404
    assert api(alice, "GET", f"/conversations/{own}/attachments/{attachment_id}/download").status_code == 404
    assert api(alice, "GET", f"/conversations/{conversation_id}/attachments/{uuid.uuid4()}/download").status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("invoice.pdf", b"MZ\x90\x00 this is an executable", 400),  # disguised: content is not a PDF
        ("photo.png", b"<html><script>alert(1)</script></html>", 400),
        ("tool.exe", b"MZ\x90\x00", 400),  # not on the allow-list
        ("archive", b"%PDF-1.4", 400),  # no extension
        ("empty.txt", b"", 400),
        ("big.txt", b"a" * (MB + 1), 413),
    ],
)
def test_refused_files_leave_nothing_behind(api, alice, conversation_id, chat_folder, name, data, status):
    response = upload(api, alice, conversation_id, name, data)
    assert response.status_code == status, response.json
    assert "file" in response.json["details"]
    assert files_in(chat_folder) == []
    assert rows() == 0


def test_exactly_the_limit_is_accepted(api, alice, conversation_id):
    assert upload(api, alice, conversation_id, "big.txt", b"a" * MB).status_code == 201


def test_a_traversal_name_is_harmless(api, alice, conversation_id, chat_folder, app):
    response = upload(api, alice, conversation_id, "../../../etc/passwd.txt", b"root:x:0:0\n")
    assert response.status_code == 201
    assert response.json["original_name"] == "passwd.txt"
    (stored,) = files_in(chat_folder)
    assert (chat_folder / stored).read_bytes() == b"root:x:0:0\n"
    assert not (Path(app.config["UPLOAD_FOLDER"]).parent / "etc").exists()


def test_who_may_send_an_attachment(api, alice, bob, carol, conversation_id):
    attachment_id = upload(api, alice, conversation_id, "notes.txt", b"hello").json["id"]
    path = f"/conversations/{conversation_id}/messages"
    by_other = api(bob, "POST", path, json={"content": "look", "attachment_id": attachment_id})
    assert by_other.status_code == 400 and "attachment_id" in by_other.json["details"]
    other_conversation = api(alice, "POST", "/conversations", json={"participant_ids": [str(carol.id)]}).json["id"]
    elsewhere = api(
        alice, "POST", f"/conversations/{other_conversation}/messages", json={"attachment_id": attachment_id}
    )
    assert elsewhere.status_code == 400

    assert api(alice, "POST", path, json={"content": "see file", "attachment_id": attachment_id}).status_code == 201
    twice = api(alice, "POST", path, json={"attachment_id": attachment_id})
    assert twice.status_code == 400 and "attachment_id" in twice.json["details"]


def test_files_of_deleted_task_threads_go_after_commit(app, api, alice, chat_folder, client, auth_headers):
    task = client.post(
        "/api/tasks",
        json={"entity_name": "Acme", "task_type": "Call", "task_time": "2030-01-01T00:00:00+00:00"},
        headers=auth_headers(alice),
    ).json
    thread = conversations.get_or_create_task_conversation(uuid.UUID(task["id"]))
    assert upload(api, alice, thread.id, "notes.txt", b"hello").status_code == 201
    assert len(files_in(chat_folder)) == 1

    assert files.delete_files_for_tasks([uuid.UUID(task["id"])]) == 1
    db.session.rollback()  # nothing committed: the file stays
    assert len(files_in(chat_folder)) == 1
    files.delete_files_for_tasks([uuid.UUID(task["id"])])
    db.session.commit()
    assert files_in(chat_folder) == []
