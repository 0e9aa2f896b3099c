"""Attachments API through HTTP: upload, list, download, delete; types, limits, names, files always matching rows."""

import io
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from finstack import create_app
from finstack.attachments import filetypes
from finstack.attachments import service as attachments_service
from finstack.attachments.models import Attachment
from finstack.audit.models import AuditLog
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.tasks.models import Task

FUTURE = "2030-06-01T09:00:00+00:00"
MB = 1024 * 1024
ATTACHMENT_FIELDS = {
    "id",
    "task_id",
    "uploader_id",
    "uploader",
    "original_name",
    "content_type",
    "size_bytes",
    "created_at",
    "download_url",
}


@pytest.fixture
def app_config(app_config):
    """A 1 MB upload limit, so the limit is tested with small files."""
    return {**app_config, "MAX_UPLOAD_MB": 1}


# --- real small files -----------------------------------------------------------------------------------------------


def png_bytes():
    """A valid 1x1 white PNG."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def jpeg_bytes():
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"


def pdf_bytes():
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def doc_bytes():
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def office_zip(parts):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def docx_bytes():
    return office_zip({"word/document.xml": "<w:document><w:body><w:p>Hello</w:p></w:body></w:document>"})


def xlsx_bytes():
    return office_zip({"xl/workbook.xml": "<workbook/>", "xl/worksheets/sheet1.xml": "<worksheet/>"})


def plain_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


VALID_FILES = {
    "report.pdf": (pdf_bytes(), "application/pdf"),
    "logo.png": (png_bytes(), "image/png"),
    "photo.jpg": (jpeg_bytes(), "image/jpeg"),
    "scan.jpeg": (jpeg_bytes(), "image/jpeg"),
    "letter.doc": (doc_bytes(), "application/msword"),
    "letter.docx": (docx_bytes(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "ledger.xlsx": (xlsx_bytes(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "export.csv": ("name,amount\nCafé Ltd,12.50\n".encode(), "text/csv"),
    "notes.txt": ("Call back Monday ✓\n".encode(), "text/plain"),
}


# --- helpers --------------------------------------------------------------------------------------------------------


@pytest.fixture
def upload_folder(app):
    return Path(app.config["UPLOAD_FOLDER"])


@pytest.fixture
def creator(make_user):
    return make_user()


@pytest.fixture
def assignee(make_user):
    return make_user()


@pytest.fixture
def outsider(make_user):
    return make_user()


def create_task(client, headers, **fields):
    payload = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": FUTURE, **fields}
    response = client.post("/api/tasks", json=payload, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


@pytest.fixture
def task_id(client, auth_headers, creator, assignee):
    return create_task(client, auth_headers(creator), contact_person_id=str(assignee.id))


def files_url(task_id, attachment_id=None, download=False):
    url = f"/api/tasks/{task_id}/attachments"
    if attachment_id:
        url += f"/{attachment_id}"
    return url + "/download" if download else url


def upload(client, headers, task_id, name, content, field="file"):
    return client.post(
        files_url(task_id),
        data={field: (io.BytesIO(content), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def uploaded(client, headers, task_id, name="notes.txt", content=b"hello"):
    response = upload(client, headers, task_id, name, content)
    assert response.status_code == 201, response.json
    return response.json


def files_in(folder):
    """Every file under `folder`, hidden temporary files included."""
    return sorted(path.name for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def rows():
    with Session(db.engine) as session:
        return session.scalars(sa.select(Attachment)).all()


def notifications():
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


def assert_refused(response, status=400):
    assert response.status_code == status, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert "file" in response.json["details"]


# --- upload and download of every allowed type ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALID_FILES))
def test_each_allowed_type_uploads_and_downloads_byte_for_byte(
    client, auth_headers, task_id, outsider, upload_folder, name
):
    content, content_type = VALID_FILES[name]
    body = uploaded(client, auth_headers(outsider), task_id, name, content)

    assert set(body) == ATTACHMENT_FIELDS
    assert body["original_name"] == name
    assert body["content_type"] == content_type
    assert body["size_bytes"] == len(content)
    assert body["uploader_id"] == str(outsider.id)
    assert body["uploader"]["username"] == outsider.username
    assert body["download_url"] == files_url(task_id, body["id"], download=True)

    (stored,) = rows()
    assert stored.stored_name != name
    assert stored.stored_name.endswith("." + name.rsplit(".", 1)[1])
    assert files_in(upload_folder) == [stored.stored_name]
    assert (upload_folder / stored.stored_name).read_bytes() == content

    response = client.get(body["download_url"], headers=auth_headers(outsider), buffered=False)
    try:
        assert response.status_code == 200
        assert response.is_streamed
        assert response.get_data() == content
        assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
        assert response.mimetype == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        response.close()


def test_upload_is_audited_and_listed(client, auth_headers, task_id, outsider, creator):
    first = uploaded(client, auth_headers(outsider), task_id, "a.txt", b"first")
    second = uploaded(client, auth_headers(creator), task_id, "b.pdf", pdf_bytes())

    listing = client.get(files_url(task_id), headers=auth_headers(outsider))
    assert listing.status_code == 200
    assert [item["id"] for item in listing.json["items"]] == [first["id"], second["id"]]
    assert listing.json["pagination"] == {
        "page": 1, "per_page": 20, "total": 2, "pages": 1, "total_exact": True, "next_cursor": None
    }
    paged = client.get(files_url(task_id) + "?per_page=1&page=2", headers=auth_headers(outsider)).json
    assert [item["id"] for item in paged["items"]] == [second["id"]]

    entries = sorted(audit_entries("attachment.create"), key=lambda entry: entry.changes["original_name"])
    assert [str(entry.entity_id) for entry in entries] == [first["id"], second["id"]]
    assert entries[0].actor_id == outsider.id
    assert entries[0].entity_type == "attachment"
    assert entries[0].changes == {
        "task_id": task_id,
        "original_name": "a.txt",
        "content_type": "text/plain",
        "size_bytes": 5,
    }


def test_listing_shows_only_that_tasks_files(client, auth_headers, task_id, creator):
    other = create_task(client, auth_headers(creator))
    uploaded(client, auth_headers(creator), task_id, "here.txt")
    uploaded(client, auth_headers(creator), other, "there.txt")
    items = client.get(files_url(other), headers=auth_headers(creator)).json["items"]
    assert [item["original_name"] for item in items] == ["there.txt"]


@pytest.mark.parametrize("role", ["member", "manager", "admin"])
def test_every_user_may_list_download_and_upload(client, auth_headers, make_user, task_id, creator, role):
    existing = uploaded(client, auth_headers(creator), task_id)
    user = make_user(role=role)
    assert client.get(files_url(task_id), headers=auth_headers(user)).status_code == 200
    assert client.get(existing["download_url"], headers=auth_headers(user)).data == b"hello"
    assert upload(client, auth_headers(user), task_id, "mine.txt", b"mine").status_code == 201


def test_unauthenticated_requests_are_refused(client, auth_headers, task_id, creator):
    existing = uploaded(client, auth_headers(creator), task_id)
    assert client.get(files_url(task_id)).status_code == 401
    assert client.post(files_url(task_id), data={"file": (io.BytesIO(b"x"), "x.txt")}).status_code == 401
    assert client.get(existing["download_url"]).status_code == 401
    assert client.delete(files_url(task_id, existing["id"])).status_code == 401
    assert len(rows()) == 1


def test_unknown_task_or_attachment_is_404(client, auth_headers, task_id, creator, upload_folder):
    headers = auth_headers(creator)
    existing = uploaded(client, headers, task_id)
    other_task = create_task(client, headers)
    missing = str(uuid.uuid4())

    assert client.get(files_url(missing), headers=headers).status_code == 404
    response = upload(client, headers, missing, "a.txt", b"orphan?")
    assert response.status_code == 404
    assert set(response.json) == {"error", "code", "details"}
    for task, attachment in ((missing, existing["id"]), (task_id, missing), (other_task, existing["id"])):
        assert client.get(files_url(task, attachment, download=True), headers=headers).status_code == 404
        assert client.delete(files_url(task, attachment), headers=headers).status_code == 404
    assert len(rows()) == 1
    assert len(files_in(upload_folder)) == 1


def test_download_of_a_file_missing_on_disk_is_404(client, auth_headers, task_id, creator, upload_folder):
    existing = uploaded(client, auth_headers(creator), task_id)
    (upload_folder / rows()[0].stored_name).unlink()
    response = client.get(existing["download_url"], headers=auth_headers(creator))
    assert response.status_code == 404
    assert set(response.json) == {"error", "code", "details"}


# --- what is refused ------------------------------------------------------------------------------------------------

DISGUISED = {
    "windows program named .pdf": ("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 64),
    "html page named .pdf": ("statement.pdf", b"<html><script>alert(1)</script></html>"),
    "png named .txt": ("notes.txt", png_bytes()),
    "png named .jpg": ("photo.jpg", png_bytes()),
    "jpeg named .png": ("logo.png", jpeg_bytes()),
    "pdf named .doc": ("letter.doc", pdf_bytes()),
    "spreadsheet named .docx": ("letter.docx", xlsx_bytes()),
    "document named .xlsx": ("ledger.xlsx", docx_bytes()),
    "plain zip named .docx": ("letter.docx", plain_zip()),
    "zip appended to html named .docx": ("letter.docx", b"<html>hi</html>" + docx_bytes()),
    "truncated zip named .xlsx": ("ledger.xlsx", b"PK\x03\x04" + b"\x00" * 40),
    "NUL bytes named .csv": ("export.csv", b"a,b\n1,\x002\n"),
    "latin-1 named .txt": ("notes.txt", "Café".encode("latin-1")),
    "utf-16 named .txt": ("notes.txt", "hello".encode("utf-16")),
    "cut multibyte character named .txt": ("notes.txt", "✓".encode()[:2]),
}


@pytest.mark.parametrize("case", list(DISGUISED))
def test_disguised_files_are_refused(client, auth_headers, task_id, creator, upload_folder, case):
    name, content = DISGUISED[case]
    response = upload(client, auth_headers(creator), task_id, name, content)
    assert_refused(response)
    assert "content" in response.json["details"]["file"][0]
    assert rows() == []
    assert files_in(upload_folder) == []
    assert notifications() == []
    assert audit_entries("attachment.create") == []


@pytest.mark.parametrize("name", ["setup.exe", "page.html", "archive.zip", "script.js", "README", "photo.jpg.exe", ""])
def test_types_off_the_allow_list_are_refused(client, auth_headers, task_id, creator, upload_folder, name):
    assert_refused(upload(client, auth_headers(creator), task_id, name, b"hello"))
    assert rows() == []
    assert files_in(upload_folder) == []


def test_an_empty_file_is_refused(client, auth_headers, task_id, creator, upload_folder):
    assert_refused(upload(client, auth_headers(creator), task_id, "empty.txt", b""))
    assert files_in(upload_folder) == []


def test_the_file_field_is_required_and_others_refused(client, auth_headers, task_id, creator):
    headers = auth_headers(creator)
    missing = client.post(files_url(task_id), data={}, headers=headers, content_type="multipart/form-data")
    assert_refused(missing)
    assert client.post(files_url(task_id), json={"file": "aGVsbG8="}, headers=headers).status_code == 400

    unknown = client.post(
        files_url(task_id),
        data={"file": (io.BytesIO(b"a"), "a.txt"), "extra": (io.BytesIO(b"b"), "b.txt")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert unknown.status_code == 400
    assert "extra" in unknown.json["details"]
    assert rows() == []


# --- size limit -----------------------------------------------------------------------------------------------------


def test_a_file_of_exactly_the_limit_is_accepted(client, auth_headers, task_id, creator):
    assert uploaded(client, auth_headers(creator), task_id, "big.txt", b"a" * MB)["size_bytes"] == MB


def test_an_oversized_file_is_413_and_leaves_nothing(client, auth_headers, task_id, creator, upload_folder):
    response = upload(client, auth_headers(creator), task_id, "big.txt", b"a" * (MB + 1))
    assert_refused(response, 413)
    assert response.json["error"] == "File too large"
    assert response.json["details"]["max_bytes"] == MB
    assert rows() == []
    assert files_in(upload_folder) == []


def multipart_body(name, content, boundary="finstack-boundary"):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_limit_holds_without_a_content_length(client, auth_headers, task_id, creator, upload_folder):
    """A chunked request announces no size: the bytes are counted as they are written."""
    body, content_type = multipart_body("big.txt", b"a" * (MB + 10))
    response = client.post(
        files_url(task_id),
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={**auth_headers(creator), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    assert_refused(response, 413)
    assert rows() == []
    assert files_in(upload_folder) == []


def test_a_body_over_max_content_length_is_413_in_the_error_shape(app_config, make_user, auth_headers, tmp_path):
    small = create_app({**app_config, "MAX_CONTENT_LENGTH": MB, "UPLOAD_FOLDER": str(tmp_path / "small")})
    # The whole-request cap is raised to leave room for the largest file allowed.
    assert small.config["MAX_CONTENT_LENGTH"] == 2 * MB
    with small.app_context():
        user = make_user()
        headers = auth_headers(user)
        client = small.test_client()
        task = create_task(client, headers)
        response = upload(client, headers, task, "huge.txt", b"a" * (3 * MB))
        assert response.status_code == 413
        assert set(response.json) == {"error", "code", "details"}
        assert rows() == []
        assert files_in(tmp_path / "small") == []
        db.session.remove()
        db.engine.dispose()


def test_max_content_length_stays_above_the_upload_limit(app_config):
    app = create_app({**app_config, "MAX_UPLOAD_MB": 40})
    assert app.config["MAX_CONTENT_LENGTH"] == 41 * MB
    with app.app_context():
        db.engine.dispose()


# --- names ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:/Users/ann/win.ini.txt", "win.ini.txt"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("....txt", "file.txt"),
        ("报告.pdf", "file.pdf"),
        ("résumé; v2.txt", "resume_v2.txt"),
        ("<script>x.txt", "scriptx.txt"),
        ("Q3 Report (final).PDF", "Q3_Report_final.pdf"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_traversal_and_odd_names_are_harmless(
    client, auth_headers, task_id, creator, upload_folder, tmp_path, sent, kept
):
    content = pdf_bytes() if kept.endswith(".pdf") else b"just text"
    body = uploaded(client, auth_headers(creator), task_id, sent, content)
    assert body["original_name"] == kept

    # The one file written sits directly in UPLOAD_FOLDER under its random name.
    (path,) = [path for path in tmp_path.rglob("*") if path.is_file() and not path.name.endswith(".db")]
    assert path.parent == upload_folder
    assert path.name == rows()[0].stored_name

    response = client.get(body["download_url"], headers=auth_headers(creator))
    assert response.data == content
    assert response.headers["Content-Disposition"] == f"attachment; filename={kept}"


# --- deleting -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["uploader", "manager", "admin"])
def test_uploader_manager_or_admin_deletes(client, auth_headers, task_id, outsider, manager, admin, upload_folder, who):
    body = uploaded(client, auth_headers(outsider), task_id, "gone.txt")
    actor = {"uploader": outsider, "manager": manager, "admin": admin}[who]

    response = client.delete(files_url(task_id, body["id"]), headers=auth_headers(actor))
    assert response.status_code == 204
    assert rows() == []
    assert files_in(upload_folder) == []
    (entry,) = audit_entries("attachment.delete")
    assert entry.actor_id == actor.id
    assert str(entry.entity_id) == body["id"]
    assert entry.changes["original_name"] == "gone.txt"
    assert entry.changes["uploader_id"] == str(outsider.id)
    assert client.get(body["download_url"], headers=auth_headers(actor)).status_code == 404


@pytest.mark.parametrize("who", ["other member", "task creator", "task assignee"])
def test_others_may_not_delete(
    client, auth_headers, make_user, task_id, outsider, creator, assignee, upload_folder, who
):
    body = uploaded(client, auth_headers(outsider), task_id)
    actor = {"other member": make_user(), "task creator": creator, "task assignee": assignee}[who]
    response = client.delete(files_url(task_id, body["id"]), headers=auth_headers(actor))
    assert response.status_code == 403
    assert len(rows()) == 1
    assert len(files_in(upload_folder)) == 1
    assert audit_entries("attachment.delete") == []


def test_a_failed_delete_keeps_the_file(client, auth_headers, task_id, creator, upload_folder, monkeypatch):
    body = uploaded(client, auth_headers(creator), task_id)

    def failing_commit():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(db.session, "commit", failing_commit)
    assert client.delete(files_url(task_id, body["id"]), headers=auth_headers(creator)).status_code == 500
    monkeypatch.undo()

    assert len(rows()) == 1
    assert len(files_in(upload_folder)) == 1
    assert client.get(body["download_url"], headers=auth_headers(creator)).data == b"hello"


# --- no orphan files, no rows without files -------------------------------------------------------------------------


def test_a_failed_commit_leaves_no_file_and_no_row(client, auth_headers, task_id, outsider, upload_folder, monkeypatch):
    def failing_commit():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(db.session, "commit", failing_commit)
    response = upload(client, auth_headers(outsider), task_id, "report.pdf", pdf_bytes())
    monkeypatch.undo()

    assert response.status_code == 500
    assert set(response.json) == {"error", "code", "details"}
    assert rows() == []
    assert files_in(upload_folder) == []
    assert notifications() == []
    assert audit_entries("attachment.create") == []


def test_an_upload_to_a_task_deleted_meanwhile_leaves_nothing(
    client, auth_headers, task_id, outsider, upload_folder, monkeypatch
):
    """The task goes (another request, committed) while the file is being checked: the insert fails on its key."""
    headers = auth_headers(outsider)
    if db.engine.dialect.name == "sqlite":  # SQLite enforces foreign keys only when asked to
        sa.event.listen(db.engine, "connect", lambda connection, record: connection.execute("PRAGMA foreign_keys=ON"))
        db.session.remove()
        db.engine.dispose()

    check = filetypes.content_matches

    def check_then_lose_the_task(extension, path):
        with Session(db.engine) as other_request:
            other_request.execute(sa.delete(Task).where(Task.id == uuid.UUID(task_id)))
            other_request.commit()
        return check(extension, path)

    monkeypatch.setattr(filetypes, "content_matches", check_then_lose_the_task)
    response = upload(client, headers, task_id, "report.pdf", pdf_bytes())

    assert response.status_code == 404
    assert response.json["error"] == "Task not found"
    assert rows() == []
    assert files_in(upload_folder) == []
    assert notifications() == []


def test_delete_for_tasks_removes_rows_now_and_files_after_commit(
    app, client, auth_headers, task_id, creator, upload_folder
):
    headers = auth_headers(creator)
    other = create_task(client, headers)
    for name in ("a.txt", "b.txt"):
        uploaded(client, headers, task_id, name)
    kept = uploaded(client, headers, other, "kept.txt")

    # Rolled back: rows and files stay.
    assert attachments_service.delete_for_tasks([uuid.UUID(task_id)]) == 2
    assert len(files_in(upload_folder)) == 3
    db.session.rollback()
    assert len(rows()) == 3
    assert len(files_in(upload_folder)) == 3

    # Committed with the task's deletion: both go, the other task's file stays.
    assert attachments_service.delete_for_tasks([uuid.UUID(task_id)]) == 2
    db.session.execute(sa.delete(Task).where(Task.id == uuid.UUID(task_id)))
    db.session.commit()
    assert [row.original_name for row in rows()] == ["kept.txt"]
    assert files_in(upload_folder) == [rows()[0].stored_name]
    assert client.get(kept["download_url"], headers=headers).data == b"hello"


# --- notifications --------------------------------------------------------------------------------------------------


def test_upload_notifies_creator_and_assignee_not_the_uploader(
    client, auth_headers, task_id, creator, assignee, outsider
):
    uploaded(client, auth_headers(outsider), task_id, "minutes.txt")
    assert notifications() == sorted([(str(creator.id), "attachment_added"), (str(assignee.id), "attachment_added")])

    inbox = client.get("/api/notifications", headers=auth_headers(assignee)).json["items"]
    assert inbox[0]["type"] == "attachment_added"
    assert inbox[0]["task_id"] == task_id
    assert inbox[0]["actor_id"] == str(outsider.id)
    assert inbox[0]["message"] == "minutes.txt"
    assert client.get("/api/notifications", headers=auth_headers(outsider)).json["items"] == []


@pytest.mark.parametrize("who", ["creator", "assignee"])
def test_upload_by_a_task_owner_notifies_only_the_other(client, auth_headers, task_id, creator, assignee, who):
    actor, other = (creator, assignee) if who == "creator" else (assignee, creator)
    uploaded(client, auth_headers(actor), task_id)
    assert notifications() == [(str(other.id), "attachment_added")]


def test_the_openapi_document_shows_the_multipart_upload(client):
    spec = client.get("/api/openapi.json").json
    operation = spec["paths"]["/api/tasks/{task_id}/attachments"]["post"]
    schema_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["properties"]["file"]["format"] == "binary"
    download = spec["paths"]["/api/tasks/{task_id}/attachments/{attachment_id}/download"]["get"]
    assert "application/pdf" in download["responses"]["200"]["content"]  # each stored type, not octet-stream
