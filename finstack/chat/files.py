"""Chat attachments: files uploaded to a conversation, sent with `messages.send_message(attachment_id=...)`."""

import sqlalchemy as sa

from finstack.attachments import service as task_attachments
from finstack.chat import ticket_threads
from finstack.chat.conversations import require_member
from finstack.chat.models import ChatAttachment, Conversation, Message
from finstack.core.sql import in_values
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tasks import signals as task_signals

UPLOAD_SUBFOLDER = "chat"


def upload_folder():
    """Chat files live beside task attachments, under UPLOAD_FOLDER/chat, with random names."""
    return task_attachments.upload_folder() / UPLOAD_SUBFOLDER


def add_attachment(user, conversation_id, upload):
    """Store a file in the conversation (task attachments' rules and guarantees: `receive_upload`).

    Send it with `send_message(attachment_id=...)`.
    """
    conversation = require_member(user, conversation_id)
    with task_attachments.receive_upload(upload, upload_folder()) as stored:
        attachment = ChatAttachment(
            conversation_id=conversation.id,
            uploaded_by=user.id,
            file_name=stored.original_name,
            stored_name=stored.stored_name,
            content_type=stored.content_type,
            size=stored.size,
        )
        db.session.add(attachment)
        db.session.commit()
    return attachment


def get_attachment(user, conversation_id, attachment_id):
    """A chat attachment, for the conversation's members only (one sent with an internal note: its staff only)."""
    conversation = require_member(user, conversation_id)
    attachment = db.session.get(ChatAttachment, attachment_id)
    if attachment is None or attachment.conversation_id != conversation.id:
        raise ApiError(404, "Attachment not found")
    if not ticket_threads.sees_internal(user, conversation) and db.session.scalar(
        sa.select(sa.exists().where(Message.attachment_id == attachment.id, Message.internal.is_(True)))
    ):
        raise ApiError(404, "Attachment not found")  # a file sent with an internal note
    return attachment


def delete_files_for_tasks(task_ids):
    """Remove the chat files of the task threads of `task_ids` (ids, or a SELECT of them) once the caller's
    transaction commits.

    The rows (thread, messages, files) go with their task (ON DELETE CASCADE); call this in the same transaction
    as the task deletion.
    """
    stored_names = db.session.scalars(
        sa.select(ChatAttachment.stored_name)
        .join(Conversation, Conversation.id == ChatAttachment.conversation_id)
        .where(in_values(Conversation.task_id, task_ids))
    ).all()
    task_attachments.remove_files_after_commit(upload_folder(), stored_names)
    return len(stored_names)


@task_signals.tasks_purged.connect
def _on_tasks_purged(sender, task_ids):
    delete_files_for_tasks(task_ids)
