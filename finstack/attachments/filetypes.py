"""The file types FinStack accepts, and how each is recognised from its content, not just its name.

A file is accepted only when its extension is on the allow-list *and* its bytes look like that type,
so a renamed executable or HTML page is refused whatever it is called.
"""

import codecs
import zipfile

CHUNK = 64 * 1024

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _starts_with(magic):
    def check(path):
        with open(path, "rb") as file:
            return file.read(len(magic)) == magic

    return check


def _office_zip(folder):
    """An Office Open XML package: a zip archive (from its first byte) holding `folder/` parts."""

    def check(path):
        if not _starts_with(ZIP_MAGIC)(path):
            return False
        try:
            with zipfile.ZipFile(path) as archive:
                return any(name.startswith(folder) for name in archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return False

    return check


def _utf8_text(path):
    """Valid UTF-8 all the way through, with no NUL bytes (which text never holds)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                if b"\x00" in chunk:
                    return False
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# extension → (content type served on download, content check)
FILE_TYPES = {
    "pdf": ("application/pdf", _starts_with(b"%PDF-")),
    "png": ("image/png", _starts_with(b"\x89PNG\r\n\x1a\n")),
    "jpg": ("image/jpeg", _starts_with(b"\xff\xd8\xff")),
    "jpeg": ("image/jpeg", _starts_with(b"\xff\xd8\xff")),
    "doc": ("application/msword", _starts_with(OLE_MAGIC)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", _office_zip("word/")),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _office_zip("xl/")),
    "csv": ("text/csv", _utf8_text),
    "txt": ("text/plain", _utf8_text),
}
ALLOWED_EXTENSIONS = tuple(FILE_TYPES)
# A download's documented media types (OpenAPI `content`): each type a stored file can be served with.
DOWNLOAD_CONTENT = {
    served_type: {"schema": {"type": "string", "format": "binary"}} for served_type, _ in FILE_TYPES.values()
}


def is_allowed(extension):
    return extension in FILE_TYPES


def content_type(extension):
    return FILE_TYPES[extension][0]


def content_matches(extension, path):
    """Does the file at `path` really hold a `.extension` file?"""
    return FILE_TYPES[extension][1](path)
