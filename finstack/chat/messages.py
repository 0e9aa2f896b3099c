"""Chat messages: sending (idempotent by `client_id`), cursor pages, read markers, pinned messages, search.

Events, pushed after commit (a rollback announces nothing):
- `chat_message` → the conversation's live room (`conversations.live_room`): `message_out(message)`; a ticket
  thread's internal note → its staff room only;
- `read_receipt` → the same room: `{conversation_id, user_id, message_ids, last_read_message_id, read_at}`; one that
  names an internal note → the staff room only.

Internal notes are left out of everything a ticket's requester reads: pages, cursors, read markers, pins, search.
`chat.signals.message_sent` tells the ticket domain about each new message (first response, notifications).
"""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from finstack.chat.conversations import follow_thread, invalid, live_room, require_member, state_row, view_of
from finstack.chat.models import MAX_CONTENT, MEMBER_KINDS, ChatAttachment, Conversation, ConversationMember, Message
from finstack.chat.offline import notify_offline_members
from finstack.chat.schemas import MessageOut, ReadReceiptOut
from finstack.chat.signals import message_sent
from finstack.chat.ticket_threads import sees_internal
from finstack.core import permissions
from finstack.core.events import emit_after_commit
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db

TICK = timedelta(microseconds=1)


# -- sending and reading ------------------------------------------------------------------------------------------


def message_out(message):
    """The JSON-ready dump of a message: REST bodies and the `chat_message` event carry it."""
    return MessageOut().dump(message)


def _by_client_id(sender_id, client_id):
    return db.session.scalar(sa.select(Message).where(Message.sender_id == sender_id, Message.client_id == client_id))


def _replay(message, conversation_id):
    if message.conversation_id != conversation_id:
        raise ApiError(409, "This client_id was already used for a message in another conversation")
    return message, False


def _check_content(content, attachment_id):
    if len(content) > MAX_CONTENT:
        raise invalid("content", f"Longer than maximum length {MAX_CONTENT}.")
    if attachment_id is None and not content.strip():
        raise invalid("content", "Must not be blank.")


def _sendable_attachment(user, conversation, attachment_id):
    attachment = db.session.get(ChatAttachment, attachment_id)
    if attachment is None or attachment.conversation_id != conversation.id:
        raise invalid("attachment_id", "No attachment of this conversation has this id.")
    if attachment.uploaded_by != user.id:
        raise invalid("attachment_id", "Only the uploader can send this attachment.")
    if db.session.scalar(sa.select(sa.exists().where(Message.attachment_id == attachment.id))):
        raise invalid("attachment_id", "This attachment was already sent.")
    return attachment


def _visible(user, conversation):
    """SQL: the conversation's messages `user` (a member) sees."""
    return permissions.visible_messages_clause(Message, sees_internal(user, conversation))


def _check_flags(user, conversation, internal, is_ai):
    """Internal notes and replies sent from a suggestion exist in ticket threads only, and only its staff send them."""
    for name, value in (("internal", internal), ("is_ai", is_ai)):
        if value and conversation.kind != "ticket":
            raise invalid(name, "Only ticket conversations have internal notes and suggested replies.")
    if (internal or is_ai) and not sees_internal(user, conversation):
        raise ApiError(403, "Only the ticket's agents and admins may send internal notes or suggested replies")


def _advance_marker(user_id, conversation_id, message_id, message_at):
    """Move the user's read marker forward to the message (never back); rows that do not exist stay absent."""
    member = ConversationMember
    db.session.execute(
        sa.update(member)
        .where(
            member.conversation_id == conversation_id,
            member.user_id == user_id,
            sa.or_(
                member.last_read_message_at.is_(None),
                sa.tuple_(member.last_read_message_at, member.last_read_message_id) < (message_at, message_id),
            ),
        )
        .values(last_read_message_id=message_id, last_read_message_at=message_at)
        .execution_options(synchronize_session=False)
    )


def send_message(user, conversation_id, content, client_id=None, attachment_id=None, internal=False, is_ai=False):
    """Store a message (1..5000 characters, or an attachment with optional text) and announce it after commit.

    In a ticket thread the ticket's staff may send an `internal` note (its staff room only) or mark a reply `is_ai`
    (sent from a suggestion); the requester gets 403 for either, other conversations 400.

    Returns `(message, created)`. The same `client_id` from the same sender returns the stored message with
    `created` False and announces nothing, even when two copies race (the unique constraint decides).

    Messages of a conversation are written one at a time (the conversation row is locked first), and each
    `created_at` is later than the previous one: the `(created_at, id)` order is the commit order, so a client
    catching up with `after=<last id>` never misses a message committed later with an earlier time.
    """
    conversation = require_member(user, conversation_id)
    follow_thread(user, conversation)  # first, so the sender's own sockets hear this very message
    user_id, conversation_id = user.id, conversation.id
    content = content or ""
    if client_id is not None and (existing := _by_client_id(user_id, client_id)) is not None:
        return _replay(existing, conversation_id)
    _check_content(content, attachment_id)
    _check_flags(user, conversation, internal, is_ai)
    if attachment_id is not None:
        _sendable_attachment(user, conversation, attachment_id)
    table = Conversation.__table__
    try:
        now = utcnow()
        lock = sa.update(table).where(table.c.id == conversation_id).values(updated_at=now)
        # Takes the row lock (PostgreSQL) / the write lock (SQLite) until commit.
        previous = db.session.execute(lock.returning(table.c.last_message_at)).scalar_one()
        created_at = max(now, previous + TICK) if previous is not None else now
        message = Message(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            sender_id=user_id,
            content=content,
            client_id=client_id,
            attachment_id=attachment_id,
            is_pinned=False,
            internal=internal,
            is_ai=is_ai,
            created_at=created_at,
        )
        db.session.add(message)
        db.session.flush()
        db.session.execute(
            sa.update(table)
            .where(table.c.id == conversation_id)
            .values(last_message_at=created_at, updated_at=created_at)
        )
        _advance_marker(user_id, conversation_id, message.id, created_at)
        message_sent.send(current_app._get_current_object(), conversation=conversation, message=message, author=user)
        notify_offline_members(conversation, message, user)
        emit_after_commit("chat_message", message_out(message), [live_room(conversation, internal)])
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if client_id is not None and (existing := _by_client_id(user_id, client_id)) is not None:
            return _replay(existing, conversation_id)
        raise
    return message, True


def _cursor(conversation_id, message_id, field, visible):
    cursor = db.session.execute(
        sa.select(Message.created_at, Message.id).where(
            Message.id == message_id, Message.conversation_id == conversation_id, visible
        )
    ).one_or_none()
    if cursor is None:
        raise invalid(field, "No message of this conversation has this id.")
    return tuple(cursor)


def list_messages(user, conversation_id, *, before=None, after=None, limit=50):
    """Up to `limit` messages, oldest → newest, in the cursor envelope `{"items", "cursor"}`.

    No cursor: the latest ones. `before=<id>`: the ones just before that message. `after=<id>`: the ones just
    after it (catch-up: repeat with `cursor.newest_id` while `cursor.has_more`). Both: the first ones after `after`
    that are also before `before`. `has_more` says whether more messages lie beyond this page in the direction
    read (older ones, or with `after` newer ones); it is found by reading one message more than `limit`.
    """
    conversation = require_member(user, conversation_id)
    follow_thread(user, conversation)
    position = sa.tuple_(Message.created_at, Message.id)
    visible = _visible(user, conversation)
    conditions = [Message.conversation_id == conversation.id, visible]
    if before is not None:
        conditions.append(position < _cursor(conversation.id, before, "before", visible))
    if after is not None:
        conditions.append(position > _cursor(conversation.id, after, "after", visible))
    statement = sa.select(Message).where(*conditions).limit(limit + 1)
    if after is not None:
        items = db.session.scalars(statement.order_by(Message.created_at, Message.id)).all()
        has_more = len(items) > limit
        items = items[:limit]
    else:
        items = db.session.scalars(statement.order_by(Message.created_at.desc(), Message.id.desc())).all()
        has_more = len(items) > limit
        items = list(reversed(items[:limit]))
    return {
        "items": items,
        "cursor": {
            "limit": limit,
            "has_more": has_more,
            "oldest_id": items[0].id if items else None,
            "newest_id": items[-1].id if items else None,
        },
    }


def _mark_read(user, conversation_id, message_ids=None):
    conversation = require_member(user, conversation_id)
    visible = _visible(user, conversation)
    user_id, conversation_id = user.id, conversation.id
    state_row(user_id, conversation)
    message_ids = list(dict.fromkeys(message_ids or ()))
    newest_first = (Message.created_at.desc(), Message.id.desc())
    if message_ids:
        found = db.session.execute(
            sa.select(Message.id, Message.created_at)
            .where(Message.conversation_id == conversation_id, Message.id.in_(message_ids), visible)
            .order_by(*newest_first)
        ).all()
        missing = set(message_ids) - {row.id for row in found}
        if missing:
            raise invalid("message_ids", f"Not messages of this conversation: {', '.join(sorted(map(str, missing)))}.")
        target = found[0]
    else:
        target = db.session.execute(
            sa.select(Message.id, Message.created_at)
            .where(Message.conversation_id == conversation_id, visible)
            .order_by(*newest_first)
            .limit(1)
        ).one_or_none()
    if target is not None:
        _advance_marker(user_id, conversation_id, target.id, target.created_at)
    marker = db.session.scalar(
        sa.select(ConversationMember.last_read_message_id).where(
            ConversationMember.conversation_id == conversation_id, ConversationMember.user_id == user_id
        )
    )
    receipt = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "message_ids": message_ids,
        "last_read_message_id": marker,
        "read_at": utcnow(),
    }
    named = [*message_ids, *([marker] if marker is not None else [])]
    names_internal = conversation.kind == "ticket" and db.session.scalar(
        sa.select(sa.exists().where(Message.id.in_(named), Message.internal.is_(True)))
    )
    emit_after_commit("read_receipt", ReadReceiptOut().dump(receipt), [live_room(conversation, names_internal)])
    db.session.commit()
    return receipt


def mark_read(user, conversation_id, message_ids=None):
    """Move the user's read marker to the newest of `message_ids` (or the latest message), never backwards.

    Commits, pushes `read_receipt` to the conversation room after commit, and returns that payload (JSON-ready).
    """
    return ReadReceiptOut().dump(_mark_read(user, conversation_id, message_ids))


def read_conversation(user, conversation_id, message_ids=None):
    """`mark_read` for the REST API: the receipt plus the unread count left."""
    receipt = _mark_read(user, conversation_id, message_ids)
    conversation = db.session.get(Conversation, receipt["conversation_id"])
    public_only = not sees_internal(user, conversation)
    receipt["unread_count"] = view_of(user, conversation.id, public_only=public_only).unread_count
    return receipt


# -- pins and search ----------------------------------------------------------------------------------------------


def pin_message(user, conversation_id, message_id, pinned):
    """Pin (or unpin) a message for everyone in the conversation; any member may."""
    conversation = require_member(user, conversation_id)
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise ApiError(404, "Message not found")
    if message.internal and not sees_internal(user, conversation):
        raise ApiError(404, "Message not found")
    if pinned and not message.is_pinned:
        message.is_pinned, message.pinned_by, message.pinned_at = True, user.id, utcnow()
        db.session.commit()
    elif not pinned and message.is_pinned:
        message.is_pinned, message.pinned_by, message.pinned_at = False, None, None
        db.session.commit()
    return message


def pinned_messages(user, conversation_id, *, page, per_page, cursor=None):
    """The conversation's pinned messages, most recently pinned first."""
    conversation = require_member(user, conversation_id)
    conditions = (Message.conversation_id == conversation.id, Message.is_pinned.is_(True), _visible(user, conversation))
    return paginate(
        sa.select(Message).where(*conditions).order_by(Message.pinned_at.desc(), Message.id.desc()),
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=sa.select(Message.id).where(*conditions),
    )


def search_messages(user, *, q, page, per_page, cursor=None, conversation_id=None):
    """Messages whose content holds `q` (literal, case-insensitive), newest first.

    Without `conversation_id`: in the user's direct and group conversations only. With it: in that conversation,
    which may be a task or ticket thread the user may read (a ticket's requester: not its internal notes).
    """
    if conversation_id is not None:
        conversation = require_member(user, conversation_id)
        scope = sa.and_(Message.conversation_id == conversation.id, _visible(user, conversation))
    else:
        scope = Message.conversation_id.in_(
            sa.select(ConversationMember.conversation_id)
            .join(Conversation, Conversation.id == ConversationMember.conversation_id)
            .where(ConversationMember.user_id == user.id, Conversation.kind.in_(MEMBER_KINDS))
        )
    conditions = (scope, contains_literal(Message.content, q))
    statement = (
        sa.select(Message)
        .where(*conditions)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .options(joinedload(Message.conversation))
    )
    return paginate(
        statement, page=page, per_page=per_page, cursor=cursor, count_statement=sa.select(Message.id).where(*conditions)
    )
