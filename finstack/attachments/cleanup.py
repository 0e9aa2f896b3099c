"""Remove what a crash can leave in UPLOAD_FOLDER: partial uploads, and stored files no row owns.

An upload is written under UPLOAD_FOLDER/.partial, moved to its final name, and only then is its row committed
(`service.receive_upload`); a process killed on the way leaves a partial file, or a final file without a row.
`clean_uploads` removes both once they are older than UPLOAD_CLEANUP_AGE_SECONDS (default one hour): a younger
file may belong to an upload still arriving, or to one between its move and its commit, in this or another process.
Server starts run it (gunicorn.conf.py, `python app.py`), and so does `flask attachments clean`; importing the app
and other commands do not.
"""

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from finstack.attachments import service
from finstack.attachments.models import Attachment
from finstack.chat.files import UPLOAD_SUBFOLDER
from finstack.chat.models import ChatAttachment
from finstack.extensions import db

log = logging.getLogger(__name__)

CHUNK = 500


@dataclass
class CleanupResult:
    partials: int = 0
    orphans: int = 0


def _owned_folders():
    """Each folder of stored files, with the column whose rows own its files."""
    folder = service.upload_folder()
    return [(folder, Attachment.stored_name), (folder / UPLOAD_SUBFOLDER, ChatAttachment.stored_name)]


def _is_old(path, cutoff):
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _remove(path):
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _files(folder):
    return [path for path in folder.iterdir() if path.is_file()] if folder.is_dir() else []


def _is_partial(path):
    """Uploads in progress: the partial area, and the hidden `.<name>.part` files of releases before it."""
    return path.name.startswith(".") and path.name.endswith(service.PARTIAL_SUFFIX)


def clean_uploads(older_than=None):
    """Remove partial uploads and unowned stored files older than `older_than` seconds (default: the setting)."""
    if older_than is None:
        older_than = current_app.config["UPLOAD_CLEANUP_AGE_SECONDS"]
    cutoff = time.time() - older_than
    result = CleanupResult()
    for path in _files(service.partial_folder()):
        if _is_old(path, cutoff) and _remove(path):
            result.partials += 1
    for folder, owner in _owned_folders():
        candidates = []
        for path in _files(folder):
            if _is_partial(path):
                if _is_old(path, cutoff) and _remove(path):
                    result.partials += 1
            elif _is_old(path, cutoff):
                candidates.append(path)
        for start in range(0, len(candidates), CHUNK):
            chunk = candidates[start : start + CHUNK]
            owned = set(db.session.scalars(sa.select(owner).where(owner.in_([path.name for path in chunk]))))
            for path in chunk:
                if path.name not in owned and _remove(path):
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
