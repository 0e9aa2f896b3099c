from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from finstack.attachments.filetypes import ALLOWED_EXTENSIONS
from finstack.chat import URL_PREFIX
from finstack.chat.models import KINDS, MAX_CLIENT_ID, MAX_CONTENT, MAX_NAME
from finstack.core.schemas import AwareDateTime, BaseSchema, NotBlank, PageQuery, StrictBoolean
from finstack.users.schemas import UserBrief

MAX_PARTICIPANTS = 1000
MAX_MESSAGE_IDS = 500
DEFAULT_MESSAGES = 50
MAX_MESSAGES = 100


NAME = validate.And(validate.Length(min=1, max=MAX_NAME), NotBlank())
USER_IDS = fields.List(fields.UUID(), validate=validate.Length(max=MAX_PARTICIPANTS))


# -- output -------------------------------------------------------------------------------------------------------


class ChatAttachmentOut(BaseSchema):
    """A chat file, named field for field like a task attachment (`AttachmentOut`), the parent id aside."""

    id = fields.UUID()
    conversation_id = fields.UUID()
    uploader_id = fields.UUID(attribute="uploaded_by")
    uploader = fields.Nested(UserBrief)
    original_name = fields.String(
        attribute="file_name", metadata={"description": "The upload's name, sanitised; used for downloads"}
    )
    content_type = fields.String()
    size_bytes = fields.Integer(attribute="size")
    created_at = AwareDateTime()
    download_url = fields.Function(
        # Built by hand, not url_for: message dumps are also made for socket events, outside any request.
        lambda attachment: (
            f"{URL_PREFIX}/conversations/{attachment.conversation_id}/attachments/{attachment.id}/download"
        ),
        metadata={"description": "Path that streams the file (members only)"},
    )


class MessageOut(BaseSchema):
    """A message, as the REST API returns it and as the `chat_message` event carries it."""

    id = fields.UUID()
    conversation_id = fields.UUID()
    sender_id = fields.UUID()
    sender = fields.Nested(UserBrief)
    content = fields.String()
    message_type = fields.String(metadata={"description": '"text" or "attachment"'})
    attachment_id = fields.UUID(allow_none=True)
    attachment = fields.Nested(ChatAttachmentOut, allow_none=True)
    client_id = fields.String(allow_none=True, metadata={"description": "The sender's idempotency key, echoed"})
    is_pinned = fields.Boolean()
    pinned_by = fields.UUID(allow_none=True)
    pinned_at = AwareDateTime(allow_none=True)
    internal = fields.Boolean(metadata={"description": "A ticket thread's internal note: its staff alone see it"})
    is_ai = fields.Boolean(metadata={"description": "Sent by the ticket's staff from a suggested reply"})
    created_at = AwareDateTime()


class MessageCursor(Schema):
    limit = fields.Integer(required=True, metadata={"description": "The page size asked for (`limit` or `per_page`)"})
    has_more = fields.Boolean(
        required=True,
        metadata={
            "description": "More messages lie beyond this page in the direction read: older ones (latest page, "
            "`before`), newer ones (`after`)"
        },
    )
    oldest_id = fields.UUID(
        required=True, allow_none=True, metadata={"description": "The first item's id: send it as `before` for older"}
    )
    newest_id = fields.UUID(
        required=True, allow_none=True, metadata={"description": "The last item's id: send it as `after` for newer"}
    )


class MessageCursorPage(Schema):
    """Messages page by cursor, not by page number: `{"items", "cursor"}` instead of `{"items", "pagination"}`."""

    items = fields.List(fields.Nested(MessageOut), required=True)
    cursor = fields.Nested(MessageCursor, required=True)


class ConversationBrief(BaseSchema):
    id = fields.UUID()
    kind = fields.String()
    name = fields.String(allow_none=True)
    task_id = fields.UUID(allow_none=True)
    ticket_id = fields.UUID(allow_none=True)


class SearchHitOut(MessageOut):
    conversation = fields.Nested(ConversationBrief)


class ConversationOut(BaseSchema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": "direct | group | task | ticket"})
    is_group = fields.Boolean()
    name = fields.String(allow_none=True)
    task_id = fields.UUID(allow_none=True)
    ticket_id = fields.UUID(allow_none=True)
    created_by = fields.UUID()
    created_at = AwareDateTime()
    updated_at = AwareDateTime()
    last_message_at = AwareDateTime(allow_none=True)
    participant_ids = fields.List(
        fields.UUID(), metadata={"description": "Members (direct, group); empty for task and ticket threads"}
    )
    participants = fields.List(fields.Nested(UserBrief))
    last_message = fields.Nested(MessageOut, allow_none=True)
    unread_count = fields.Integer(
        metadata={"description": "Messages from others after your read marker (a ticket's requester: not its notes)"}
    )
    is_pinned = fields.Boolean(metadata={"description": "Pinned by you"})
    last_read_message_id = fields.UUID(allow_none=True)


class ReadReceiptOut(BaseSchema):
    """The `read_receipt` event."""

    conversation_id = fields.UUID()
    user_id = fields.UUID()
    message_ids = fields.List(fields.UUID(), metadata={"description": "The ids the reader sent (may be empty)"})
    last_read_message_id = fields.UUID(allow_none=True, metadata={"description": "The reader's marker now"})
    read_at = AwareDateTime()


class ReadOut(ReadReceiptOut):
    unread_count = fields.Integer(metadata={"description": "Your unread messages left in the conversation"})


class ConversationEventOut(BaseSchema):
    """The `conversation_updated` event, pushed to the `user:<id>` room of every member, old and new."""

    conversation_id = fields.UUID()
    action = fields.String(metadata={"description": '"created" or "updated"'})
    kind = fields.String()
    name = fields.String(allow_none=True)
    member_ids = fields.List(fields.UUID(), metadata={"description": "The members after the change"})
    added_user_ids = fields.List(fields.UUID())
    removed_user_ids = fields.List(fields.UUID())
    actor_id = fields.UUID()
    updated_at = AwareDateTime()


class PinOut(BaseSchema):
    conversation_id = fields.UUID()
    is_pinned = fields.Boolean()


class ChatUserOut(BaseSchema):
    id = fields.UUID()
    username = fields.String()
    full_name = fields.String()
    email = fields.String()
    role = fields.String()
    department = fields.String(allow_none=True)


# -- input --------------------------------------------------------------------------------------------------------


class ConversationCreate(BaseSchema):
    participant_ids = fields.List(
        fields.UUID(),
        required=True,
        validate=validate.Length(min=1, max=MAX_PARTICIPANTS),
        metadata={"description": "DM: the other user; group: the others (you are added)"},
    )
    is_group = StrictBoolean(load_default=False)
    name = fields.String(allow_none=True, load_default=None, validate=NAME)


class ConversationUpdate(BaseSchema):
    name = fields.String(validate=NAME)
    add_participant_ids = USER_IDS
    remove_participant_ids = USER_IDS

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if not data:
            raise ValidationError("Give name, add_participant_ids or remove_participant_ids.")
        both = set(data.get("add_participant_ids") or ()) & set(data.get("remove_participant_ids") or ())
        if both:
            raise ValidationError("A user cannot be both added and removed.", "remove_participant_ids")


class MessageCreate(BaseSchema):
    content = fields.String(load_default="", validate=validate.Length(max=MAX_CONTENT))
    client_id = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CLIENT_ID),
        metadata={"description": "Made by the client, unique per message; a retry with the same one stores once"},
    )
    attachment_id = fields.UUID(allow_none=True, load_default=None)
    internal = StrictBoolean(
        load_default=False,
        metadata={"description": "Ticket threads: an internal note for the ticket's staff (the requester: 403)"},
    )
    is_ai = StrictBoolean(
        load_default=False,
        metadata={"description": "Ticket threads: a reply the ticket's staff send from a suggestion (requester: 403)"},
    )
    message_type = fields.String(
        validate=validate.OneOf(("text", "attachment")),
        load_only=True,
        metadata={"description": "Accepted for compatibility; derived from attachment_id"},
    )

    @validates_schema
    def _attachment_type(self, data, **kwargs):
        if data.get("message_type") == "attachment" and data.get("attachment_id") is None:
            raise ValidationError("An attachment message needs attachment_id.", "attachment_id")


class MessageQuery(BaseSchema):
    before = fields.UUID(metadata={"description": "Only messages older than this one"})
    after = fields.UUID(metadata={"description": "Only messages newer than this one (catch-up)"})
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_MESSAGES))
    per_page = fields.Integer(validate=validate.Range(min=1, max=MAX_MESSAGES), metadata={"description": "= limit"})

    @validates_schema
    def _one_size(self, data, **kwargs):
        if "limit" in data and "per_page" in data and data["limit"] != data["per_page"]:
            raise ValidationError("Give limit or per_page, not both.", "per_page")


class ReadIn(BaseSchema):
    message_ids = fields.List(
        fields.UUID(),
        validate=validate.Length(max=MAX_MESSAGE_IDS),
        metadata={"description": "Read up to the newest of these; leave out to read everything"},
    )


class SearchQuery(PageQuery):
    q = fields.String(required=True, validate=validate.And(validate.Length(min=1, max=200), NotBlank()))
    conversation_id = fields.UUID()


class AvailableUsersQuery(PageQuery):
    search = fields.String(validate=validate.Length(min=1, max=100))


class ConversationListQuery(PageQuery):
    kind = fields.String(validate=validate.OneOf([kind for kind in KINDS if kind != "task"]))


class ChatAttachmentUpload(BaseSchema):
    file = Upload(
        required=True,
        metadata={
            "description": "The file: "
            + ", ".join(ALLOWED_EXTENSIONS)
            + "; its content must match its extension; at most MAX_UPLOAD_MB (default 10) MB"
        },
    )
