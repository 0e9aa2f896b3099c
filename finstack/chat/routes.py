from flask import send_from_directory
from flask_jwt_extended import current_user

from finstack.attachments import filetypes
from finstack.chat import bp, conversations, files, messages
from finstack.chat.schemas import (
    DEFAULT_MESSAGES,
    AvailableUsersQuery,
    ChatAttachmentOut,
    ChatAttachmentUpload,
    ChatUserOut,
    ConversationCreate,
    ConversationListQuery,
    ConversationOut,
    ConversationUpdate,
    MessageCreate,
    MessageCursorPage,
    MessageOut,
    MessageQuery,
    PinOut,
    ReadIn,
    ReadOut,
    SearchHitOut,
    SearchQuery,
)
from finstack.core.schemas import PageQuery, page_of

# -- conversations ------------------------------------------------------------------------------------------------


@bp.post("/conversations")
@bp.auth_required()
@bp.arguments(ConversationCreate)
@bp.response(201, ConversationOut)
def create_conversation(data):
    """Start a DM (`is_group` false, one other participant) or a named group of 3+ people, you included.

    201 when created; 200 with the existing DM when the pair already has one."""
    conversation, created = conversations.create_conversation(current_user, **data)
    return conversations.conversation_view(current_user, conversation.id), 201 if created else 200


@bp.get("/conversations")
@bp.auth_required()
@bp.arguments(ConversationListQuery, location="query")
@bp.response(200, page_of(ConversationOut))
def list_conversations(query):
    """Your direct and group conversations, pinned first, then by latest activity, with unread counts."""
    return conversations.list_conversations(current_user, **query)


@bp.get("/conversations/<uuid:conversation_id>")
@bp.auth_required()
@bp.response(200, ConversationOut)
def get_conversation(conversation_id):
    """A conversation you belong to (404 otherwise)."""
    return conversations.conversation_view(current_user, conversation_id)


@bp.patch("/conversations/<uuid:conversation_id>")
@bp.auth_required()
@bp.arguments(ConversationUpdate)
@bp.response(200, ConversationOut)
def update_conversation(changes, conversation_id):
    """Rename a group, add or remove its members (any member may; the creator cannot be removed)."""
    return conversations.update_conversation(current_user, conversation_id, **changes)


@bp.get("/tasks/<uuid:task_id>/conversation")
@bp.auth_required()
@bp.response(200, ConversationOut)
def get_task_conversation(task_id):
    """The task's chat thread (created on first use); whoever may read the task belongs to it."""
    return conversations.task_conversation_view(current_user, task_id)


@bp.post("/conversations/<uuid:conversation_id>/pin")
@bp.auth_required()
@bp.response(200, PinOut)
def pin_conversation(conversation_id):
    """Pin the conversation for yourself."""
    return conversations.pin_conversation(current_user, conversation_id, True)


@bp.delete("/conversations/<uuid:conversation_id>/pin")
@bp.auth_required()
@bp.response(200, PinOut)
def unpin_conversation(conversation_id):
    return conversations.pin_conversation(current_user, conversation_id, False)


@bp.post("/conversations/<uuid:conversation_id>/read")
@bp.auth_required()
@bp.arguments(ReadIn, required=False)
@bp.response(200, ReadOut)
def mark_read(data, conversation_id):
    """Mark the conversation read up to its latest message, or up to the newest of `message_ids`."""
    return messages.read_conversation(current_user, conversation_id, (data or {}).get("message_ids"))


# -- messages -----------------------------------------------------------------------------------------------------


@bp.get("/conversations/<uuid:conversation_id>/messages")
@bp.auth_required()
@bp.arguments(MessageQuery, location="query")
@bp.response(200, MessageCursorPage)
def list_messages(query, conversation_id):
    """Messages oldest → newest: the latest ones, or those just `before` / `after` a message id.

    Paged by cursor, not by page number: `cursor.has_more` says whether more lie beyond, `cursor.oldest_id` and
    `cursor.newest_id` are the ids to send as `before` and `after` next."""
    limit = query.get("limit") or query.get("per_page") or DEFAULT_MESSAGES
    return messages.list_messages(
        current_user, conversation_id, before=query.get("before"), after=query.get("after"), limit=limit
    )


@bp.post("/conversations/<uuid:conversation_id>/messages")
@bp.auth_required()
@bp.arguments(MessageCreate)
@bp.response(201, MessageOut)
def send_message(data, conversation_id):
    """Send a message (the REST twin of the socket's `send_message`). In a ticket's conversation its staff may send
    `internal` notes and `is_ai` replies (the requester: 403).

    201 when stored; 200 with the original when this `client_id` was already stored (a retry stores once)."""
    message, created = messages.send_message(
        current_user,
        conversation_id,
        data["content"],
        client_id=data["client_id"],
        attachment_id=data["attachment_id"],
        internal=data["internal"],
        is_ai=data["is_ai"],
    )
    return message, 201 if created else 200


@bp.get("/conversations/<uuid:conversation_id>/pinned-messages")
@bp.auth_required()
@bp.arguments(PageQuery, location="query")
@bp.response(200, page_of(MessageOut))
def list_pinned_messages(query, conversation_id):
    """The conversation's pinned messages, most recently pinned first."""
    return messages.pinned_messages(current_user, conversation_id, **query)


@bp.post("/conversations/<uuid:conversation_id>/messages/<uuid:message_id>/pin")
@bp.auth_required()
@bp.response(200, MessageOut)
def pin_message(conversation_id, message_id):
    """Pin a message for everyone in the conversation."""
    return messages.pin_message(current_user, conversation_id, message_id, True)


@bp.delete("/conversations/<uuid:conversation_id>/messages/<uuid:message_id>/pin")
@bp.auth_required()
@bp.response(200, MessageOut)
def unpin_message(conversation_id, message_id):
    return messages.pin_message(current_user, conversation_id, message_id, False)


@bp.get("/search")
@bp.auth_required()
@bp.arguments(SearchQuery, location="query")
@bp.response(200, page_of(SearchHitOut))
def search_messages(query):
    """Messages holding `q` (literal, case-insensitive) in your conversations, newest first."""
    return messages.search_messages(current_user, **query)


# -- attachments and people ---------------------------------------------------------------------------------------


@bp.post("/conversations/<uuid:conversation_id>/attachments")
@bp.auth_required()
@bp.arguments(ChatAttachmentUpload, location="files")
@bp.response(201, ChatAttachmentOut)
def upload_attachment(form, conversation_id):
    """Upload a file (multipart field `file`, same rules as task attachments); send its id in a message."""
    return files.add_attachment(current_user, conversation_id, form["file"])


@bp.get("/conversations/<uuid:conversation_id>/attachments/<uuid:attachment_id>/download")
@bp.auth_required()
@bp.doc(responses={"200": {"description": "The file, with its stored type", "content": filetypes.DOWNLOAD_CONTENT}})
def download_attachment(conversation_id, attachment_id):
    """Stream the file to a member of the conversation."""
    attachment = files.get_attachment(current_user, conversation_id, attachment_id)
    response = send_from_directory(
        files.upload_folder(),
        attachment.stored_name,
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.file_name,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/users/available")
@bp.auth_required()
@bp.arguments(AvailableUsersQuery, location="query")
@bp.response(200, page_of(ChatUserOut))
def available_users(query):
    """Active users other than you, to start a conversation with."""
    return conversations.available_users(current_user, **query)
