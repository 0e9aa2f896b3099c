"""Task attachments: upload, list, download, delete; the files on disk always match the rows.

Any authenticated user may list, download and attach files on any task (every user may read tasks);
the uploader, a manager or an admin may delete one.

No orphan files and no rows without files, whatever fails midway:
- upload (`receive_upload`, shared with chat files): the bytes are streamed to a partial file under
  UPLOAD_FOLDER/.partial, counted against MAX_UPLOAD_MB as they arrive (413) and checked against the type's
  signature (400); the file then moves to its random final name *before* the row is committed, and is removed
  again if anything up to and including the commit fails. A committed row therefore always has its file;
- a crash (the process killed) can still leave a partial file, or a moved file whose row never committed:
  `finstack.attachments.cleanup` removes those at server start and with `flask attachments clean`;
- delete: the row goes first; the file is removed only once that commit succeeds (`after_commit`).
"""

import logging
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.utils import secure_filename

from finstack.attachments import filetypes
from finstack.attachments.models import Attachment
from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.events import after_commit
from finstack.core.pagination import paginate
from finstack.core.sql import in_values
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.tasks import service as tasks
from finstack.tasks import signals as task_signals
from finstack.tasks.models import Task

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MB = 1024 * 1024
MAX_NAME = 255
DEFAULT_STEM = "file"
PARTIAL_FOLDER = ".partial"
PARTIAL_SUFFIX = ".part"


def upload_folder():
    return Path(current_app.config["UPLOAD_FOLDER"])


def partial_folder():
    """Where uploads are written while they arrive; whatever is left here after a crash is removed by the cleanup."""
    return upload_folder() / PARTIAL_FOLDER


def max_upload_bytes():
    return current_app.config["MAX_UPLOAD_MB"] * MB


def clean_name(raw_name):
    """`(safe_name, extension)` for an uploaded file name, or a 400 when its type is not allowed.

    Only the last path segment counts, the extension is lower-cased, and the rest goes through
    `secure_filename`; a name that sanitises to nothing becomes "file.<ext>".
    """
    name = (raw_name or "").strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    extension = extension.lower() if dot else ""
    if not filetypes.is_allowed(extension):
        raise ApiError(
            400,
            "Validation failed",
            {"file": [f"Only these file types are allowed: {', '.join(filetypes.ALLOWED_EXTENSIONS)}."]},
        )
    stem = secure_filename(stem)[: MAX_NAME - len(extension) - 1] or DEFAULT_STEM
    return f"{stem}.{extension}", extension


def stream_to(source, path, limit):
    """Copy `source` into `path` chunk by chunk; 413 as soon as more than `limit` bytes arrived."""
    size = 0
    with open(path, "xb") as target:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413,
                    "File too large",
                    {"file": [f"Files may be at most {limit // MB} MB."], "max_bytes": limit},
                )
            target.write(chunk)
    return size


def remove_files_after_commit(folder, stored_names):
    """Remove the files `stored_names` of `folder` once the session commits (task and chat files alike)."""
    paths = [folder / name for name in stored_names]

    def remove():
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.exception("Could not remove attachment file %s", path)

    if paths:
        after_commit(remove)


def list_attachments(actor, task_id, *, page, per_page, cursor=None):
    """A task's attachments in upload order."""
    task = tasks.get_readable_task(actor, task_id)
    statement = (
        sa.select(Attachment).where(Attachment.task_id == task.id).order_by(Attachment.created_at, Attachment.id)
    )
    return paginate(
        statement,
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=sa.select(Attachment.id).where(Attachment.task_id == task.id),
    )


def get_attachment(actor, task_id, attachment_id):
    """The task's attachment, or 404 when the task (or the actor's right to read it), the attachment, or the pair
    does not exist."""
    task = tasks.get_readable_task(actor, task_id)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.task_id != task.id:
        raise ApiError(404, "Attachment not found")
    return attachment


@dataclass(frozen=True)
class StoredUpload:
    stored_name: str  # the random name in the target folder
    original_name: str  # sanitised, for Content-Disposition only
    content_type: str
    size: int


@contextmanager
def receive_upload(upload, folder):
    """Store `upload` (a werkzeug FileStorage) in `folder` and yield its `StoredUpload`; commit its row in the block.

    The name's type must be allowed (400), the bytes are streamed to a partial file (413 past MAX_UPLOAD_MB), an
    empty file or one whose content is not of its type is refused (400), and only then does the file move to its
    random final name. Any failure, here or in the block (the commit included), rolls the session back and removes
    the file.
    """
    original_name, extension = clean_name(upload.filename)
    stored_name = f"{uuid.uuid4().hex}.{extension}"
    final_path = folder / stored_name
    partial_path = partial_folder() / f"{stored_name}{PARTIAL_SUFFIX}"
    folder.mkdir(parents=True, exist_ok=True)
    partial_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = stream_to(upload.stream, partial_path, max_upload_bytes())
        if size == 0:
            raise ApiError(400, "Validation failed", {"file": ["The file is empty."]})
        if not filetypes.content_matches(extension, partial_path):
            raise ApiError(
                400, "Validation failed", {"file": [f"The file's content is not that of a .{extension} file."]}
            )
        os.replace(partial_path, final_path)
        yield StoredUpload(stored_name, original_name, filetypes.content_type(extension), size)
    except BaseException:
        db.session.rollback()
        partial_path.unlink(missing_ok=True)
        final_path.unlink(missing_ok=True)
        raise


def add_attachment(actor, task_id, upload):
    """Store `upload` (a werkzeug FileStorage) on the task; see the module docstring for the guarantees."""
    task = tasks.get_readable_task(actor, task_id)
    try:
        with receive_upload(upload, upload_folder()) as stored:
            attachment = Attachment(
                task_id=task.id,
                uploader_id=actor.id,
                original_name=stored.original_name,
                stored_name=stored.stored_name,
                content_type=stored.content_type,
                size_bytes=stored.size,
            )
            db.session.add(attachment)
            db.session.flush()
            audit.record(
                actor,
                "attachment.create",
                "attachment",
                attachment.id,
                {
                    "task_id": task.id,
                    "original_name": stored.original_name,
                    "content_type": stored.content_type,
                    "size_bytes": stored.size,
                },
            )
            notify(
                [
                    Draft(
                        user_id=user_id,
                        type="attachment_added",
                        title=f"{actor.full_name} attached a file to {task.entity_name}",
                        message=stored.original_name,
                        task_id=task.id,
                    )
                    for user_id in dict.fromkeys((task.created_by, task.contact_person_id))
                ],
                actor,
            )
            db.session.commit()
    except IntegrityError as exc:
        if not _task_exists(task_id):
            raise ApiError(404, "Task not found") from exc  # deleted while the file was arriving
        raise
    return attachment


def _task_exists(task_id):
    return db.session.scalar(sa.select(Task.id).where(Task.id == task_id)) is not None


def delete_attachment(actor, task_id, attachment_id):
    attachment = get_attachment(actor, task_id, attachment_id)
    permissions.require(
        permissions.can_delete_attachment(actor, attachment),
        "Only the uploader, a manager or an admin may delete an attachment",
    )
    audit.record(
        actor,
        "attachment.delete",
        "attachment",
        attachment.id,
        {
            "task_id": attachment.task_id,
            "original_name": attachment.original_name,
            "content_type": attachment.content_type,
            "size_bytes": attachment.size_bytes,
            "uploader_id": attachment.uploader_id,
        },
    )
    db.session.delete(attachment)
    remove_files_after_commit(upload_folder(), [attachment.stored_name])
    db.session.commit()


def delete_for_tasks(task_ids):
    """Delete the attachments of `task_ids` in the caller's transaction; their files go once it commits.

    For purging tasks from the trash (`tasks_purged`): the purge holds the task rows locked (PostgreSQL) before it
    announces them, so an upload racing with it either commits before it (and is removed here) or fails on its
    foreign key (and removes its own file). One DELETE … RETURNING the stored names. Returns the number of
    attachments removed. `task_ids`: ids, or a SELECT of them (`core.locks.claim`). As `comments.service
    .delete_for_tasks`, the session is not searched for the deleted rows.
    """
    stored_names = db.session.scalars(
        sa.delete(Attachment)
        .where(in_values(Attachment.task_id, task_ids))
        .returning(Attachment.stored_name)
        .execution_options(synchronize_session=False)
    ).all()
    remove_files_after_commit(upload_folder(), stored_names)
    return len(stored_names)


@task_signals.tasks_purged.connect
def _on_tasks_purged(sender, task_ids):
    delete_for_tasks(task_ids)
