"""Chat conversations: membership, views (unread counts, last message), direct and group conversations, task and
ticket threads.

Who is a member:
- direct and group conversations: the users with a `conversation_members` row;
- task threads: whoever `permissions.can_read_task` lets read the task;
- ticket threads: whoever `permissions.can_read_ticket` lets read the ticket (`chat.ticket_threads`); internal notes
  only for its staff. Rows in task and ticket threads only keep a user's read marker and pin; they never grant access.
Anyone else gets 404 "Conversation not found" (its existence is not revealed) and nothing is stored.

Event, pushed after commit (a rollback announces nothing):
- `conversation_updated` → `user:<id>` of every member, added and removed ones included:
  `{conversation_id, action: "created"|"updated", kind, name, member_ids, added_user_ids, removed_user_ids,
  actor_id, updated_at}`; the live sockets of added / removed users also join / leave `conversation:<id>`.
"""

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload, raiseload, selectinload

from finstack import realtime
from finstack.audit import service as audit
from finstack.chat import ticket_threads
from finstack.chat.models import MEMBER_KINDS, Conversation, ConversationMember, Message, direct_key_for
from finstack.chat.schemas import ConversationEventOut
from finstack.core import permissions
from finstack.core.event_log import register_room_members
from finstack.core.events import (
    after_commit,
    conversation_room,
    conversation_staff_room,
    emit_after_commit,
    task_room,
    ticket_thread_rooms,
    user_room,
)
from finstack.core.locks import lock_rows
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.users.models import User

MIN_GROUP_MEMBERS = 2  # a group is created with 3+ people and never shrinks below 2


def _not_found():
    return ApiError(404, "Conversation not found")


def invalid(field, message):
    return ApiError(400, "Validation failed", {field: [message]})


# -- membership ---------------------------------------------------------------------------------------------------


def require_member(user, conversation_id):
    """The conversation, if `user` belongs to it (task and ticket threads: may read the task, the ticket); else 404."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise _not_found()
    if conversation.kind == "task":
        task = db.session.get(Task, conversation.task_id)
        if task is None or task.deleted_at is not None or not permissions.can_read_task(user, task):
            raise _not_found()
    elif conversation.kind == "ticket":
        ticket_threads.require_reader(user, conversation)
    elif db.session.get(ConversationMember, (conversation.id, user.id)) is None:
        raise _not_found()
    return conversation


def _room_members(conversation_ids):
    """The users a direct or group conversation's room events are recorded for (finstack.core.event_log): its
    members. Ticket-thread rooms are ad hoc there (their events reach a reader's log only by user room)."""
    return (
        sa.select(sa.cast(ConversationMember.conversation_id, sa.String), ConversationMember.user_id)
        .join(Conversation, Conversation.id == ConversationMember.conversation_id)
        .where(
            ConversationMember.conversation_id.in_([uuid.UUID(key) for key in conversation_ids]),
            Conversation.kind.in_(MEMBER_KINDS),
        )
    )


register_room_members("conversation:", _room_members)


def live_room(conversation, internal=False):
    """The room a conversation's live events (messages, typing, read receipts) go to.

    A task thread's is its task's room: the sockets that sent `join_task`, and those of readers who opened the thread
    (`follow_thread`). Direct and group conversations have their own room, which members' sockets join at connect;
    so have ticket threads (`chat.ticket_threads`), plus a staff room for what is `internal`.
    """
    if conversation.kind == "task":
        return task_room(conversation.task_id)
    if internal:
        return conversation_staff_room(conversation.id)
    return conversation_room(conversation.id)


def follow_thread(user, conversation):
    """A reader opened a task or ticket thread: their live sockets join its rooms (a ticket's staff: its staff room
    too), to hear what is said there from now on."""
    if conversation.kind == "task":
        realtime.join_user(user.id, [live_room(conversation)])
    elif conversation.kind == "ticket":
        staff = ticket_threads.sees_internal(user, conversation)
        realtime.join_user(user.id, ticket_thread_rooms(conversation.id, staff))


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
        if task is None or task.deleted_at is not None:
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


def state_row(user_id, conversation):
    """The user's row in the conversation, created for a task or ticket thread the first time it is needed.

    Creating one commits on its own (a concurrent creation of the same row is absorbed), so call it
    before writing anything else in the transaction.
    """
    row = db.session.get(ConversationMember, (conversation.id, user_id))
    if row is not None or conversation.kind in MEMBER_KINDS:
        return row
    conversation_id = conversation.id
    try:
        db.session.add(ConversationMember(conversation_id=conversation_id, user_id=user_id))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    return db.session.get(ConversationMember, (conversation_id, user_id))


# -- views, changes, task threads ---------------------------------------------------------------------------------


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


def _views_statement(user, *conditions, members_only=True, public_only=False):
    """One SELECT for conversations as `user` sees them: unread count and last message as correlated subqueries.

    `members_only`: only conversations where the user has a row (the list). Otherwise the row is outer-joined:
    a task or ticket thread's row, if any, only holds the read marker and pin, and access is checked before.
    `public_only`: internal notes count neither as unread nor as the last message (for a ticket's requester).
    """
    mine = aliased(ConversationMember, name="mine")
    last = aliased(Message, name="last_message")
    visible = permissions.visible_messages_clause(Message, not public_only)
    last_id = (
        sa.select(Message.id)
        .where(Message.conversation_id == Conversation.id, visible)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    unread = (
        sa.select(sa.func.count(Message.id))
        .where(Message.conversation_id == Conversation.id, Message.sender_id != user.id, visible, _after_marker(mine))
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
    conversation, member, unread_count, last_message = row[:4]
    return ConversationView(
        conversation=conversation,
        unread_count=unread_count,
        is_pinned=bool(member and member.is_pinned),
        last_read_message_id=member.last_read_message_id if member else None,
        last_message=last_message,
    )


def conversation_view(user, conversation_id):
    """GET one conversation (any kind) as `user` sees it; 404 for non-members."""
    conversation = require_member(user, conversation_id)
    return view_of(user, conversation.id, public_only=not ticket_threads.sees_internal(user, conversation))


def view_of(user, conversation_id, *, public_only):
    """The conversation as `user` sees it; `public_only` leaves internal notes out (`ticket_threads.sees_internal`)."""
    statement, _ = _views_statement(
        user, Conversation.id == conversation_id, members_only=False, public_only=public_only
    )
    return _view(db.session.execute(statement).one())


def list_conversations(user, *, page, per_page, cursor=None, kind=None):
    """The user's direct and group conversations, pinned first, then by latest activity.

    A page costs three queries whatever its size: the count, the page (unread counts and last messages
    included), and the members of the page's conversations.
    """
    kinds = [kind] if kind else list(MEMBER_KINDS)
    statement, mine = _views_statement(user, Conversation.kind.in_(kinds))
    statement = statement.order_by(mine.is_pinned.desc(), Conversation.updated_at.desc(), Conversation.id.desc())
    count = (
        sa.select(ConversationMember.user_id)
        .join(Conversation, Conversation.id == ConversationMember.conversation_id)
        .where(ConversationMember.user_id == user.id, Conversation.kind.in_(kinds))
    )
    result = paginate(
        statement.options(selectinload(Conversation.members)),
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=count,
        whole_rows=True,
    )
    result["items"] = [_view(row) for row in result["items"]]
    return result


def _require_active_users(user_ids, field):
    if not user_ids:
        return
    found = set(db.session.scalars(sa.select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))))
    missing = [str(user_id) for user_id in user_ids if user_id not in found]
    if missing:
        raise invalid(field, f"No active user has these ids: {', '.join(missing)}.")


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
            raise invalid("name", "A group needs a name.")
        if len(others) < MIN_GROUP_MEMBERS:
            raise invalid("participant_ids", "A group needs at least 3 people, you included.")
        _require_active_users(others, "participant_ids")
        conversation = Conversation(kind="group", name=name.strip(), created_by=user_id)
    else:
        if name is not None:
            raise invalid("name", "Only groups have a name.")
        if len(others) != 1:
            raise invalid("participant_ids", "A direct conversation has exactly one other participant.")
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
    lock_rows(Conversation, [conversation.id])
    current = member_ids(conversation.id)
    added = [other for other in dict.fromkeys(add_participant_ids or ()) if other not in current]
    removed = list(dict.fromkeys(remove_participant_ids or ()))
    strangers = [str(other) for other in removed if other not in current]
    if strangers:
        raise invalid("remove_participant_ids", f"Not members of this group: {', '.join(strangers)}.")
    if conversation.created_by in removed:
        raise invalid("remove_participant_ids", "The group's creator cannot be removed.")
    if len(current) + len(added) - len(removed) < MIN_GROUP_MEMBERS:
        raise invalid("remove_participant_ids", f"A group keeps at least {MIN_GROUP_MEMBERS} members.")
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
    return view_of(user, conversation_id, public_only=False)  # also for a member who just left; groups only


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


def ticket_conversation_view(user, ticket_id):
    """The ticket's conversation (made with the ticket), for whoever may read the ticket (others: 404). Opening it
    puts the reader's live sockets in its rooms."""
    conversation = ticket_threads.conversation_of(ticket_id)
    if conversation is None:
        raise ApiError(404, "Ticket not found")
    try:
        require_member(user, conversation.id)
    except ApiError:
        raise ApiError(404, "Ticket not found") from None
    follow_thread(user, conversation)
    return conversation_view(user, conversation.id)


# -- pins and people ----------------------------------------------------------------------------------------------


def pin_conversation(user, conversation_id, pinned):
    """Pin (or unpin) the conversation for `user` alone: pinned ones head their list."""
    conversation = require_member(user, conversation_id)
    user_id, conversation_id = user.id, conversation.id
    row = state_row(user_id, conversation)
    if row is not None and row.is_pinned != pinned:
        row.is_pinned = pinned
        db.session.commit()
    return {"conversation_id": conversation_id, "is_pinned": pinned}


def available_users(user, *, page, per_page, cursor=None, search=None):
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
        cursor=cursor,
        count_statement=sa.select(User.id).where(*conditions),
    )
