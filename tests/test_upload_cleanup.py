"""No orphan upload files after a crash: real processes are killed (SIGKILL) in the middle of an upload and between
the file's move and its row's commit; `flask attachments clean` and a server start remove what they left, and
only what no row owns."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from finstack import create_app
from finstack.attachments import service as attachments
from finstack.attachments.models import Attachment
from finstack.chat import conversations, files
from finstack.extensions import db
from finstack.tasks import service as tasks
from finstack.tasks.schemas import TaskCreate
from tests.test_gunicorn import Gunicorn, migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n" + b"0" * 200_000 + b"\n%%EOF\n"
AN_HOUR_AGO = time.time() - 2 * 3600

# Runs the real upload helper in a process of its own and kills that process with SIGKILL at the chosen moment.
CRASH = textwrap.dedent(
    """
    import io, os, signal, sys
    from werkzeug.datastructures import FileStorage
    from finstack import create_app
    from finstack.attachments import service

    database_url, upload_folder, moment = sys.argv[1:]
    config = {"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_FOLDER": upload_folder}
    app = create_app(config)

    class DiesMidway(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:  # the first chunk is on disk: die before the rest arrives
                os.kill(os.getpid(), signal.SIGKILL)
            return super().read(size)

    data = b"%PDF-1.4\\n" + b"0" * 200_000 + b"\\n%%EOF\\n"
    with app.app_context():
        stream = DiesMidway(data) if moment == "mid-upload" else io.BytesIO(data)
        with service.receive_upload(FileStorage(stream, "report.pdf"), service.upload_folder()):
            os.kill(os.getpid(), signal.SIGKILL)  # moved into place, row not committed
    """
)


def crash(database_url, upload_folder, moment):
    result = subprocess.run(
        [sys.executable, "-c", CRASH, database_url, str(upload_folder), moment], cwd=ROOT, capture_output=True
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


def files_in(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def age(folder, seconds_ago=AN_HOUR_AGO):
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (seconds_ago, seconds_ago))


@pytest.fixture
def owned_files(app, make_user):
    """A task attachment and a chat attachment, committed: these must survive every cleanup."""
    alice, bob = make_user(), make_user()
    body = {"entity_name": "Acme Ltd", "task_type": "Call", "task_time": "2030-01-01T09:00:00+00:00"}
    task = tasks.create_task(alice, **TaskCreate().load(body))
    attachment = attachments.add_attachment(alice, task.id, FileStorage(io.BytesIO(PDF), "contract.pdf"))
    conversation, _ = conversations.create_conversation(alice, participant_ids=[bob.id])
    chat_file = files.add_attachment(alice, conversation.id, FileStorage(io.BytesIO(PDF), "minutes.pdf"))
    return [attachment.stored_name, f"chat/{chat_file.stored_name}"]


def test_crashed_uploads_leave_files_that_flask_attachments_clean_removes(
    app, app_config, database_url, runner, owned_files
):
    folder = Path(app.config["UPLOAD_FOLDER"])
    crash(database_url, folder, "mid-upload")
    crash(database_url, folder, "before-commit")
    leftovers = sorted(set(files_in(folder)) - set(owned_files))
    assert len(leftovers) == 2
    assert any(name.startswith(".partial/") and name.endswith(".pdf.part") for name in leftovers)
    assert any("/" not in name and name.endswith(".pdf") for name in leftovers)

    # Importing the app and running other commands touch nothing.
    create_app(dict(app_config))
    assert runner.invoke(args=["users", "list"]).exit_code == 0
    assert len(files_in(folder)) == 4

    # Within the grace period (an upload may be between its move and its commit) nothing goes either.
    result = runner.invoke(args=["attachments", "clean"])
    assert result.exit_code == 0, result.output
    assert "Removed 0 partial upload(s) and 0 unowned file(s)." in result.output
    assert len(files_in(folder)) == 4

    age(folder)
    result = runner.invoke(args=["attachments", "clean"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 partial upload(s) and 1 unowned file(s)." in result.output
    assert files_in(folder) == sorted(owned_files)


def test_older_than_overrides_the_grace_period(app, database_url, runner, owned_files):
    folder = Path(app.config["UPLOAD_FOLDER"])
    crash(database_url, folder, "before-commit")
    (folder / "chat" / "0123456789abcdef.png").write_bytes(b"left by a crash in a chat upload")
    result = runner.invoke(args=["attachments", "clean", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "Removed 0 partial upload(s) and 2 unowned file(s)." in result.output
    assert files_in(folder) == sorted(owned_files)


def test_a_server_start_removes_what_a_crash_left(tmp_path):
    """gunicorn's worker cleans UPLOAD_FOLDER when it starts: old leftovers go, a fresh unowned file stays."""
    folder = tmp_path / "uploads"
    (folder / ".partial").mkdir(parents=True)
    (folder / "chat").mkdir()
    (folder / ".partial" / "abc.pdf.part").write_bytes(PDF[:1000])
    (folder / "def.pdf").write_bytes(PDF)
    (folder / "chat" / "ghi.pdf").write_bytes(PDF)
    (folder / ".jkl.pdf.part").write_bytes(PDF[:1000])  # the temporary name of earlier releases
    age(folder)
    (folder / "fresh.pdf").write_bytes(PDF)  # may be an upload of another process, between move and commit
    server = Gunicorn(tmp_path, {"DATABASE_URL": migrated_sqlite(tmp_path / "start.db")})
    try:
        server.wait_healthy()
        assert files_in(folder) == ["fresh.pdf"]
        assert "removed 2 partial upload(s) and 2 file(s) no attachment owns" in server.log()
    finally:
        server.stop()


def test_file_names_that_need_quoting_are_told_apart(app, runner, owned_files):
    """The ownership query sends the folder's names as one array on PostgreSQL: names with quotes, commas, braces,
    backslashes or spaces must match their row exactly, and must not be taken for an owned name."""
    folder = Path(app.config["UPLOAD_FOLDER"])
    awkward = 'q"u,o{t}e\\d name.pdf'
    attachment = db.session.scalar(sa.select(Attachment).where(Attachment.stored_name == owned_files[0]))
    (folder / owned_files[0]).rename(folder / awkward)
    attachment.stored_name = awkward
    db.session.commit()
    strays = ['"', "a,b", "{x}", "\\", "NULL", "q\"u,o{t}e\\d", owned_files[0]]
    for name in strays:
        (folder / name).write_bytes(b"left behind")
    result = runner.invoke(args=["attachments", "clean", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert f"Removed 0 partial upload(s) and {len(strays)} unowned file(s)." in result.output
    assert files_in(folder) == sorted([awkward, owned_files[1]])
