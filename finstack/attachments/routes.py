from flask import send_from_directory
from flask_jwt_extended import current_user

from finstack.attachments import bp, filetypes, service
from finstack.attachments.schemas import AttachmentOut, AttachmentQuery, AttachmentUpload
from finstack.core.schemas import page_of


@bp.get("/<uuid:task_id>/attachments")
@bp.auth_required()
@bp.arguments(AttachmentQuery, location="query")
@bp.response(200, page_of(AttachmentOut))
def list_attachments(query, task_id):
    """The task's attachments, in upload order."""
    return service.list_attachments(current_user, task_id, **query)


@bp.post("/<uuid:task_id>/attachments")
@bp.auth_required()
@bp.arguments(AttachmentUpload, location="files")
@bp.response(201, AttachmentOut)
def upload_attachment(files, task_id):
    """Attach a file (multipart field `file`). Its type is checked by extension and by content."""
    return service.add_attachment(current_user, task_id, files["file"])


@bp.get("/<uuid:task_id>/attachments/<uuid:attachment_id>/download")
@bp.auth_required()
@bp.doc(responses={"200": {"description": "The file, with its stored type", "content": filetypes.DOWNLOAD_CONTENT}})
def download_attachment(task_id, attachment_id):
    """Stream the file, with `Content-Disposition: attachment` and its sanitised name."""
    attachment = service.get_attachment(current_user, task_id, attachment_id)
    response = send_from_directory(
        service.upload_folder(),
        attachment.stored_name,
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.original_name,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.delete("/<uuid:task_id>/attachments/<uuid:attachment_id>")
@bp.auth_required()
@bp.response(204)
def delete_attachment(task_id, attachment_id):
    """Delete an attachment (its uploader, a manager or an admin); the file goes once the deletion commits."""
    service.delete_attachment(current_user, task_id, attachment_id)
