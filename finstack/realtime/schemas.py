"""Payloads of the client events. Every schema refuses unknown fields (BaseSchema)."""

from marshmallow import fields, validate

from finstack.chat.models import MAX_CLIENT_ID
from finstack.chat.schemas import MAX_MESSAGE_IDS, MessageCreate
from finstack.core.schemas import BaseSchema


class TaskRoomIn(BaseSchema):
    task_id = fields.UUID(required=True)


class ProjectRoomIn(BaseSchema):
    project_id = fields.UUID(required=True)


class SendMessageIn(MessageCreate):
    """The REST body of a message, plus the conversation; over a socket `client_id` is required (acks get lost)."""

    conversation_id = fields.UUID(required=True)
    client_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_CLIENT_ID),
        metadata={"description": "Made by the client, unique per message; a retry with the same one stores once"},
    )


class TypingIn(BaseSchema):
    conversation_id = fields.UUID(required=True)
    is_typing = fields.Boolean(required=True, truthy={True}, falsy={False})


class MarkReadIn(BaseSchema):
    conversation_id = fields.UUID(required=True)
    message_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=MAX_MESSAGE_IDS))
