"""Chat rules: conversations (direct, group, task threads), messages, read markers, pins, search, attachments.

Who is a member:
- direct and group conversations: the users with a `conversation_members` row;
- task threads: whoever `permissions.can_read_task` lets read the task. Rows there only keep a user's read
  marker and pin; they never grant access.
Anyone else gets 404 "Conversation not found" (its existence is not revealed) and nothing is stored.

The functions the Socket.IO handlers call (finstack/chat/sockets.py): `conversation_ids_for`, `require_member`,
`send_message`, `mark_read`, `member_ids`, `message_out`, `get_or_create_task_conversation`.

Events, all pushed after commit (a rollback announces nothing):
- `chat_message` → `conversation:<id>`: `message_out(message)`;
- `read_receipt` → `conversation:<id>`: `{conversation_id, user_id, message_ids, last_read_message_id, read_at}`;
- `conversation_updated` → `user:<id>` of every member, added and removed ones included:
  `{conversation_id, action: "created"|"updated", kind, name, member_ids, added_user_ids, removed_user_ids,
  actor_id, updated_at}`; the live sockets of added / removed users also join / leave `conversation:<id>`.
"""

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload, raiseload, selectinload

from finstack import realtime
from finstack.attachments import service as task_attachments
from finstack.audit import service as audit
from finstack.chat.models import (
    MAX_CONTENT,
    MEMBER_KINDS,
    ChatAttachment,
    Conversation,
    ConversationMember,
    Message,
    direct_key_for,
)
from finstack.chat.schemas import ConversationEventOut, MessageOut, ReadReceiptOut
from finstack.core import permissions
from finstack.core.events import after_commit, conversation_room, emit_after_commit, task_room, user_room
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.users.models import User

MIN_GROUP_MEMBERS = 2  # a group is created with 3+ people and never shrinks below 2
TICK = timedelta(microseconds=1)
UPLOAD_SUBFOLDER = "chat"


def _not_found():
    return ApiError(404, "Conversation not found")


def _invalid(field, message):
    return ApiError(400, "Validation failed", {field: [message]})


# -- membership ---------------------------------------------------------------------------------------------------


def require_member(user, conversation_id):
    """The conversation, if `user` belongs to it (task threads: may read the task); else 404."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise _not_found()
    if conversation.kind == "task":
        task = db.session.get(Task, conversation.task_id)
        if task is None or not permissions.can_read_task(user, task):
            raise _not_found()
    elif db.session.get(ConversationMember, (conversation.id, user.id)) is None:
        raise _not_found()
    return conversation


def live_room(conversation):
    """The room a conversation's live events (messages, typing, read receipts) go to.

    A task thread's is its task's room: the sockets that sent `join_task`, and those of readers who opened the thread
    (`follow_thread`). Direct and group conversations have their own room, which members' sockets join at connect.
    """
    if conversation.kind == "task":
        return task_room(conversation.task_id)
    return conversation_room(conversation.id)


def follow_thread(user, conversation):
    """A reader opened a task thread: their live sockets join its room, to hear what is said there from now on."""
    if conversation.kind == "task":
        realtime.join_user(user.id, [live_room(conversation)])


def conversation_ids_for(user):
    """The direct and group conversations of `user`: the `conversation:<id>` rooms their sockets join."""
    return list(
        db.session.scalars(
            sa.select(ConversationMember.conversation_id)
            .join(Conversation, Conversation.id == ConversationMember.conversation_id)
            .where(ConversationMember.user_id == user.id, Conversation.kind.in_(MEMBER_KINDS))
        )
    )


def member_ids(conversation_id):
    """Who belongs to the conversation: its member rows, or for a task thread every user who may read the task."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        return []
    if conversation.kind == "task":
        task = db.session.get(Task, conversation.task_id)
        if task is None:
            return []
        return list(
            db.session.scalars(sa.select(User.id).where(permissions.task_readers_clause(User, task)).order_by(User.id))
        )
    return list(
        db.session.scalars(
            sa.select(ConversationMember.user_id)
            .where(ConversationMember.conversation_id == conversation.id)
            .order_by(ConversationMember.joined_at, ConversationMember.user_id)
        )
    )


def _state_row(user_id, conversation):
    """The user's row in the conversation, created for a task thread the first time it is needed.

    Creating one commits on its own (a concurrent creation of the same row is absorbed), so call it
    before writing anything else in the transaction.
    """
    row = db.session.get(ConversationMember, (conversation.id, user_id))
    if row is not None or conversation.kind != "task":
        return row
    conversation_id = conversation.id
    try:
        db.session.add(ConversationMember(conversation_id=conversation_id, user_id=user_id))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    return db.session.get(ConversationMember, (conversation_id, user_id))


# -- conversations ------------------------------------------------------------------------------------------------


@dataclass
class ConversationView:
    """A conversation as one user sees it (ConversationOut)."""

    conversation: Conversation
    unread_count: int
    is_pinned: bool
    last_read_message_id: uuid.UUID | None
    last_message: Message | None

    def __getattr__(self, name):
        return getattr(self.conversation, name)

    @property
    def participants(self):
        if self.conversation.kind not in MEMBER_KINDS:
            return []
        return [member.user for member in self.conversation.members]

    @property
    def participant_ids(self):
        return [user.id for user in self.participants]


def _after_marker(member):
    """SQL: the message lies after `member`'s read marker (or nothing was read yet)."""
    return sa.or_(
        member.last_read_message_at.is_(None),
        sa.tuple_(Message.created_at, Message.id) > sa.tuple_(member.last_read_message_at, member.last_read_message_id),
    )


def _views_statement(user, *conditions, members_only=True):
    """One SELECT for conversations as `user` sees them: unread count and last message as correlated subqueries.

    `members_only`: only conversations where the user has a row (the list). Otherwise the row is outer-joined:
    a task thread's row, if any, only holds the read marker and pin, and access is checked before.
    """
    mine = aliased(ConversationMember, name="mine")
    last = aliased(Message, name="last_message")
    last_id = (
        sa.select(Message.id)
        .where(Message.conversation_id == Conversation.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    unread = (
        sa.select(sa.func.count(Message.id))
        .where(Message.conversation_id == Conversation.id, Message.sender_id != user.id, _after_marker(mine))
        .correlate(Conversation, mine)
        .scalar_subquery()
    )
    statement = (
        sa.select(Conversation, mine, unread.label("unread_count"), last)
        .select_from(Conversation)
        .join(mine, sa.and_(mine.conversation_id == Conversation.id, mine.user_id == user.id), isouter=not members_only)
        .outerjoin(last, last.id == last_id)
        .where(*conditions)
        # The models' inner-joined eager loads would drop rows when the member or the last message is missing.
        .options(raiseload(mine.user), joinedload(last.sender, innerjoin=False))
    )
    return statement, mine


def _view(row):
    conversation, member, unread_count, last_message = row
    return ConversationView(
        conversation=conversation,
        unread_count=unread_count,
        is_pinned=bool(member and member.is_pinned),
        last_read_message_id=member.last_read_message_id if member else None,
        last_message=last_message,
    )


def conversation_view(user, conversation_id):
    """GET one conversation (any kind) as `user` sees it; 404 for non-members."""
    return _view_of(user, require_member(user, conversation_id).id)


def _view_of(user, conversation_id):
    statement, _ = _views_statement(user, Conversation.id == conversation_id, members_only=False)
    return _view(db.session.execute(statement).one())


def list_conversations(user, *, page, per_page, kind=None):
    """The user's direct and group conversations, pinned first, then by latest activity.

    A page costs three queries whatever its size: the count, the page (unread counts and last messages
    included), and the members of the page's conversations.
    """
    kinds = [kind] if kind else list(MEMBER_KINDS)
    statement, mine = _views_statement(user, Conversation.kind.in_(kinds))
    statement = statement.order_by(mine.is_pinned.desc(), Conversation.updated_at.desc(), Conversation.id.desc())
    total = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ConversationMember)
        .join(Conversation, Conversation.id == ConversationMember.conversation_id)
        .where(ConversationMember.user_id == user.id, Conversation.kind.in_(kinds))
    )
    rows = db.session.execute(
        statement.options(selectinload(Conversation.members)).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return _envelope([_view(row) for row in rows], page=page, per_page=per_page, total=total)


def _envelope(items, *, page, per_page, total):
    return {
        "items": items,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": math.ceil(total / per_page) if total else 0,
        },
    }


def _require_active_users(user_ids, field):
    if not user_ids:
        return
    found = set(db.session.scalars(sa.select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))))
    missing = [str(user_id) for user_id in user_ids if user_id not in found]
    if missing:
        raise _invalid(field, f"No active user has these ids: {', '.join(missing)}.")


def _announce(conversation, actor_id, action, members, added=(), removed=()):
    """After commit: live sockets of added / removed users join / leave the room; everyone hears about it."""
    room = conversation_room(conversation.id)
    added, removed = list(added), list(removed)

    def move_sockets():
        for user_id in added:
            realtime.join_user(user_id, [room])
        for user_id in removed:
            realtime.leave_user(user_id, [room])

    after_commit(move_sockets)
    payload = ConversationEventOut().dump(
        {
            "conversation_id": conversation.id,
            "action": action,
            "kind": conversation.kind,
            "name": conversation.name,
            "member_ids": members,
            "added_user_ids": added,
            "removed_user_ids": removed,
            "actor_id": actor_id,
            "updated_at": conversation.updated_at,
        }
    )
    emit_after_commit("conversation_updated", payload, [user_room(user_id) for user_id in [*members, *removed]])


def _direct_conversation(key):
    return db.session.scalar(sa.select(Conversation).where(Conversation.direct_key == key))


def create_conversation(user, *, participant_ids, is_group=False, name=None):
    """A DM (exactly one other user; the pair's existing DM is returned) or a named group of 3+ people.

    Returns `(conversation, created)`.
    """
    user_id = user.id
    others = [other for other in dict.fromkeys(participant_ids) if other != user_id]
    if is_group:
        if name is None:
            raise _invalid("name", "A group needs a name.")
        if len(others) < MIN_GROUP_MEMBERS:
            raise _invalid("participant_ids", "A group needs at least 3 people, you included.")
        _require_active_users(others, "participant_ids")
        conversation = Conversation(kind="group", name=name.strip(), created_by=user_id)
    else:
        if name is not None:
            raise _invalid("name", "Only groups have a name.")
        if len(others) != 1:
            raise _invalid("participant_ids", "A direct conversation has exactly one other participant.")
        key = direct_key_for(user_id, others[0])
        existing = _direct_conversation(key)
        if existing is not None:
            return existing, False
        _require_active_users(others, "participant_ids")
        conversation = Conversation(kind="direct", direct_key=key, created_by=user_id)
    now = utcnow()
    conversation.created_at = conversation.updated_at = now
    members = [user_id, *others]
    conversation.members = [ConversationMember(user_id=member, joined_at=now) for member in members]
    db.session.add(conversation)
    try:
        db.session.flush()
        audit.record(
            user,
            "conversation.create",
            "conversation",
            conversation.id,
            {"kind": conversation.kind, "name": conversation.name, "member_ids": members},
        )
        _announce(conversation, user_id, "created", members, added=members)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if conversation.kind != "direct":
            raise
        existing = _direct_conversation(key)
        if existing is None:
            raise
        return existing, False  # the other side created it at the same moment
    return conversation, True


def update_conversation(user, conversation_id, *, name=None, add_participant_ids=None, remove_participant_ids=None):
    """Rename a group, add or remove members; any member may. The creator stays; 2 members at least remain."""
    conversation = require_member(user, conversation_id)
    if conversation.kind != "group":
        raise ApiError(400, "Only group conversations can be changed")
    # Conversation row first, as send_message does: concurrent changes serialise and cannot deadlock.
    db.session.execute(sa.select(Conversation.id).where(Conversation.id == conversation.id).with_for_update())
    current = member_ids(conversation.id)
    added = [other for other in dict.fromkeys(add_participant_ids or ()) if other not in current]
    removed = list(dict.fromkeys(remove_participant_ids or ()))
    strangers = [str(other) for other in removed if other not in current]
    if strangers:
        raise _invalid("remove_participant_ids", f"Not members of this group: {', '.join(strangers)}.")
    if conversation.created_by in removed:
        raise _invalid("remove_participant_ids", "The group's creator cannot be removed.")
    if len(current) + len(added) - len(removed) < MIN_GROUP_MEMBERS:
        raise _invalid("remove_participant_ids", f"A group keeps at least {MIN_GROUP_MEMBERS} members.")
    _require_active_users(added, "add_participant_ids")

    changes = {}
    if name is not None and name.strip() != conversation.name:
        changes["name"] = {"from": conversation.name, "to": name.strip()}
        conversation.name = name.strip()
    now = utcnow()
    if added:
        db.session.add_all(
            ConversationMember(conversation_id=conversation.id, user_id=other, joined_at=now) for other in added
        )
        changes["added_user_ids"] = added
    if removed:
        db.session.execute(
            sa.delete(ConversationMember)
            .where(ConversationMember.conversation_id == conversation.id, ConversationMember.user_id.in_(removed))
            .execution_options(synchronize_session="fetch")
        )
        changes["removed_user_ids"] = removed
    if changes:
        conversation.updated_at = now
        audit.record(user, "conversation.update", "conversation", conversation.id, changes)
        members = [member for member in current if member not in removed] + added
        _announce(conversation, user.id, "updated", members, added=added, removed=removed)
        db.session.commit()
    return _view_of(user, conversation_id)  # also for a member who just left


def get_or_create_task_conversation(task_id):
    """The task's thread, created on first use (404 if the task does not exist). Commits when it creates one."""
    existing = db.session.scalar(sa.select(Conversation).where(Conversation.task_id == task_id))
    if existing is not None:
        return existing
    task = tasks.get_task(task_id)
    conversation = Conversation(kind="task", task_id=task.id, created_by=task.created_by)
    db.session.add(conversation)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(sa.select(Conversation).where(Conversation.task_id == task_id))
        if existing is None:
            raise
        return existing  # created by a concurrent first use
    return conversation


def task_conversation_view(user, task_id):
    task = tasks.get_readable_task(user, task_id)
    conversation = get_or_create_task_conversation(task.id)
    follow_thread(user, conversation)
    return conversation_view(user, conversation.id)


# -- messages -----------------------------------------------------------------------------------------------------


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
        raise _invalid("content", f"Longer than maximum length {MAX_CONTENT}.")
    if attachment_id is None and not content.strip():
        raise _invalid("content", "Must not be blank.")


def _sendable_attachment(user, conversation, attachment_id):
    attachment = db.session.get(ChatAttachment, attachment_id)
    if attachment is None or attachment.conversation_id != conversation.id:
        raise _invalid("attachment_id", "No attachment of this conversation has this id.")
    if attachment.uploaded_by != user.id:
        raise _invalid("attachment_id", "Only the uploader can send this attachment.")
    if db.session.scalar(sa.select(sa.exists().where(Message.attachment_id == attachment.id))):
        raise _invalid("attachment_id", "This attachment was already sent.")
    return attachment


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


def send_message(user, conversation_id, content, client_id=None, attachment_id=None):
    """Store a message (1..5000 characters, or an attachment with optional text) and announce it after commit.

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
        emit_after_commit("chat_message", message_out(message), [live_room(conversation)])
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if client_id is not None and (existing := _by_client_id(user_id, client_id)) is not None:
            return _replay(existing, conversation_id)
        raise
    return message, True


def _cursor(conversation_id, message_id, field):
    cursor = db.session.execute(
        sa.select(Message.created_at, Message.id).where(
            Message.id == message_id, Message.conversation_id == conversation_id
        )
    ).one_or_none()
    if cursor is None:
        raise _invalid(field, "No message of this conversation has this id.")
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
    conditions = [Message.conversation_id == conversation.id]
    if before is not None:
        conditions.append(position < _cursor(conversation.id, before, "before"))
    if after is not None:
        conditions.append(position > _cursor(conversation.id, after, "after"))
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
    user_id, conversation_id = user.id, conversation.id
    _state_row(user_id, conversation)
    message_ids = list(dict.fromkeys(message_ids or ()))
    newest_first = (Message.created_at.desc(), Message.id.desc())
    if message_ids:
        found = db.session.execute(
            sa.select(Message.id, Message.created_at)
            .where(Message.conversation_id == conversation_id, Message.id.in_(message_ids))
            .order_by(*newest_first)
        ).all()
        missing = set(message_ids) - {row.id for row in found}
        if missing:
            raise _invalid("message_ids", f"Not messages of this conversation: {', '.join(sorted(map(str, missing)))}.")
        target = found[0]
    else:
        target = db.session.execute(
            sa.select(Message.id, Message.created_at)
            .where(Message.conversation_id == conversation_id)
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
    emit_after_commit("read_receipt", ReadReceiptOut().dump(receipt), [live_room(conversation)])
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
    receipt["unread_count"] = _view_of(user, receipt["conversation_id"]).unread_count
    return receipt


# -- pins ---------------------------------------------------------------------------------------------------------


def pin_conversation(user, conversation_id, pinned):
    """Pin (or unpin) the conversation for `user` alone: pinned ones head their list."""
    conversation = require_member(user, conversation_id)
    user_id, conversation_id = user.id, conversation.id
    row = _state_row(user_id, conversation)
    if row is not None and row.is_pinned != pinned:
        row.is_pinned = pinned
        db.session.commit()
    return {"conversation_id": conversation_id, "is_pinned": pinned}


def pin_message(user, conversation_id, message_id, pinned):
    """Pin (or unpin) a message for everyone in the conversation; any member may."""
    conversation = require_member(user, conversation_id)
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise ApiError(404, "Message not found")
    if pinned and not message.is_pinned:
        message.is_pinned, message.pinned_by, message.pinned_at = True, user.id, utcnow()
        db.session.commit()
    elif not pinned and message.is_pinned:
        message.is_pinned, message.pinned_by, message.pinned_at = False, None, None
        db.session.commit()
    return message


def pinned_messages(user, conversation_id, *, page, per_page):
    """The conversation's pinned messages, most recently pinned first."""
    conversation = require_member(user, conversation_id)
    conditions = (Message.conversation_id == conversation.id, Message.is_pinned.is_(True))
    return paginate(
        sa.select(Message).where(*conditions).order_by(Message.pinned_at.desc(), Message.id.desc()),
        page=page,
        per_page=per_page,
        count_statement=sa.select(Message.id).where(*conditions),
    )


# -- search and people --------------------------------------------------------------------------------------------


def search_messages(user, *, q, page, per_page, conversation_id=None):
    """Messages whose content holds `q` (literal, case-insensitive), newest first.

    Without `conversation_id`: in the user's direct and group conversations only. With it: in that conversation,
    which may be a task thread the user may read.
    """
    if conversation_id is not None:
        scope = Message.conversation_id == require_member(user, conversation_id).id
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
    return paginate(statement, page=page, per_page=per_page, count_statement=sa.select(Message.id).where(*conditions))


def available_users(user, *, page, per_page, search=None):
    """Active users other than `user`, to start a conversation with; `search` matches names or e-mail literally."""
    conditions = [User.is_active.is_(True), User.id != user.id]
    if search:
        conditions.append(
            sa.or_(
                contains_literal(User.full_name, search),
                contains_literal(User.username, search),
                contains_literal(User.email, search),
            )
        )
    return paginate(
        sa.select(User).where(*conditions).order_by(User.full_name, User.id),
        page=page,
        per_page=per_page,
        count_statement=sa.select(User.id).where(*conditions),
    )


# -- attachments --------------------------------------------------------------------------------------------------


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
    """A chat attachment, for the conversation's members only."""
    conversation = require_member(user, conversation_id)
    attachment = db.session.get(ChatAttachment, attachment_id)
    if attachment is None or attachment.conversation_id != conversation.id:
        raise ApiError(404, "Attachment not found")
    return attachment


def delete_files_for_tasks(task_ids):
    """Remove the chat files of the task threads of `task_ids` once the caller's transaction commits.

    The rows go with their task (ON DELETE CASCADE); call this in the same transaction as the task deletion.
    """
    task_ids = list(task_ids)
    if not task_ids:
        return 0
    stored_names = db.session.scalars(
        sa.select(ChatAttachment.stored_name)
        .join(Conversation, Conversation.id == ChatAttachment.conversation_id)
        .where(Conversation.task_id.in_(task_ids))
    ).all()
    task_attachments.remove_files_after_commit(upload_folder(), stored_names)
    return len(stored_names)
