from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import fields

from finstack.attachments.filetypes import ALLOWED_EXTENSIONS
from finstack.core.schemas import AwareDateTime, BaseSchema, PageQuery
from finstack.users.schemas import UserBrief


class AttachmentOut(BaseSchema):
    id = fields.UUID()
    task_id = fields.UUID()
    uploader_id = fields.UUID()
    uploader = fields.Nested(UserBrief)
    original_name = fields.String(metadata={"description": "The upload's name, sanitised; used for downloads"})
    content_type = fields.String()
    size_bytes = fields.Integer()
    created_at = AwareDateTime()
    download_url = fields.Function(
        lambda attachment: url_for(
            "attachments.download_attachment", task_id=attachment.task_id, attachment_id=attachment.id
        ),
        metadata={"description": "Path that streams the file"},
    )


class AttachmentUpload(BaseSchema):
    file = Upload(
        required=True,
        metadata={
            "description": "The file: "
            + ", ".join(ALLOWED_EXTENSIONS)
            + "; its content must match its extension; at most MAX_UPLOAD_MB (default 10) MB"
        },
    )


class AttachmentQuery(PageQuery):
    pass
