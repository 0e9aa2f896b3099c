"""Chat over Socket.IO: thin handlers over the chat modules (which store, check membership and emit).

send_message  {conversation_id, content, client_id, attachment_id?, internal?, is_ai?} → ack: the stored message (the
              original one when `client_id` was already used by this sender) or {"error", "details"}; members get
              `chat_message` (a ticket thread's internal note: its staff only).
typing        {conversation_id, is_typing} → ack {"ok": true}; the other members get `typing`
              {conversation_id, user_id, is_typing}.
mark_read     {conversation_id, message_ids} → ack: the receipt; members get `read_receipt` (the same receipt).
Non-members get an error ack; nothing is stored or relayed.
"""

from flask import request

from finstack import realtime
from finstack.chat import conversations, messages
from finstack.extensions import socketio
from finstack.realtime.handlers import client_event
from finstack.realtime.schemas import MarkReadIn, SendMessageIn, TypingIn


@client_event(SendMessageIn)
def on_send_message(user, data):
    message, _created = messages.send_message(
        user,
        data["conversation_id"],
        data["content"],
        client_id=data["client_id"],
        attachment_id=data["attachment_id"],
        internal=data["internal"],
        is_ai=data["is_ai"],
    )
    return messages.message_out(message)


@client_event(TypingIn)
def on_typing(user, data):
    conversation = conversations.require_member(user, data["conversation_id"])
    # Skip every socket of the sender held by this process, not only the one that typed (other tabs).
    own_sids = realtime.socket_registry().sids_for_user(user.id) or [request.sid]
    socketio.emit(
        "typing",
        {"conversation_id": str(data["conversation_id"]), "user_id": str(user.id), "is_typing": data["is_typing"]},
        to=conversations.live_room(conversation),
        skip_sid=own_sids,
    )
    return {"ok": True}


@client_event(MarkReadIn)
def on_mark_read(user, data):
    return messages.mark_read(user, data["conversation_id"], data["message_ids"])


def register_handlers(sio):
    """Bind the handlers to the server `socketio.init_app` just built (each app gets its own server)."""
    sio.on_event("send_message", on_send_message)
    sio.on_event("typing", on_typing)
    sio.on_event("mark_read", on_mark_read)
