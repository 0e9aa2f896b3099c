"""Remove what a crash can leave in UPLOAD_FOLDER: partial uploads, and stored files no row owns.

An upload is written under UPLOAD_FOLDER/.partial, moved to its final name, and only then is its row committed
(`service.receive_upload`); a process killed on the way leaves a partial file, or a final file without a row.
`clean_uploads` removes both once they are older than UPLOAD_CLEANUP_AGE_SECONDS (default one hour): a younger
file may belong to an upload still arriving, or to one between its move and its commit, in this or another process.
Server starts run it (gunicorn.conf.py, `python app.py`), and so does `flask attachments clean`; importing the app
and other commands do not.
"""

import logging
import os
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from finstack.attachments import service
from finstack.attachments.models import Attachment
from finstack.chat.files import UPLOAD_SUBFOLDER
from finstack.chat.models import ChatAttachment
from finstack.core.sql import in_values
from finstack.extensions import db

log = logging.getLogger(__name__)

CHUNK = 2000  # names per ownership query (SQLite allows 32,766 parameters; PostgreSQL gets one, `in_values`)


@dataclass
class CleanupResult:
    partials: int = 0
    orphans: int = 0


def _owned_folders():
    """Each folder of stored files, with the column whose rows own its files."""
    folder = service.upload_folder()
    return [(folder, Attachment.stored_name), (folder / UPLOAD_SUBFOLDER, ChatAttachment.stored_name)]


def _is_old(entry, cutoff):
    try:
        return entry.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _remove(entry):
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        return False
    return True


def _files(folder):
    """The folder's files as directory entries: their type comes with the listing and their `stat` is read once."""
    try:
        with os.scandir(folder) as entries:
            return [entry for entry in entries if entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_partial(entry):
    """Uploads in progress: the partial area, and the hidden `.<name>.part` files of releases before it."""
    return entry.name.startswith(".") and entry.name.endswith(service.PARTIAL_SUFFIX)


def clean_uploads(older_than=None):
    """Remove partial uploads and unowned stored files older than `older_than` seconds (default: the setting)."""
    if older_than is None:
        older_than = current_app.config["UPLOAD_CLEANUP_AGE_SECONDS"]
    cutoff = time.time() - older_than
    result = CleanupResult()
    for entry in _files(service.partial_folder()):
        if _is_old(entry, cutoff) and _remove(entry):
            result.partials += 1
    for folder, owner in _owned_folders():
        stored = []
        for entry in _files(folder):
            if not _is_partial(entry):
                stored.append(entry)
            elif _is_old(entry, cutoff) and _remove(entry):
                result.partials += 1
        # Owners first, then the age of the files none owns: most stored files are owned, and are never stat'ed.
        for start in range(0, len(stored), CHUNK):
            chunk = stored[start : start + CHUNK]
            owned = set(db.session.scalars(sa.select(owner).where(in_values(owner, [entry.name for entry in chunk]))))
            for entry in chunk:
                if entry.name not in owned and _is_old(entry, cutoff) and _remove(entry):
                    result.orphans += 1
    db.session.rollback()  # only read; end the transaction
    if result.partials or result.orphans:
        log.warning(
            "Upload cleanup removed %d partial upload(s) and %d file(s) no attachment owns",
            result.partials,
            result.orphans,
        )
    return result


def clean_on_start(app):
    """Run the cleanup when a server starts; a failure is logged, never stops the server."""
    with app.app_context():
        try:
            clean_uploads()
        except Exception:
            log.exception("Upload cleanup at start failed")
        finally:
            db.session.remove()
