"""Notifications for chat messages, to the members who would not see them live.

A member is offline when this process holds no socket of theirs (`realtime.socket_registry`). Sockets live in the
process that accepted them and presence is not shared between processes (Redis carries control operations, not
presence), so with several server processes a member connected only to another one counts as offline here and gets
a notification they may not need: an extra notification, never a missed one.

Who is notified: in a direct conversation, the other member; in a group, members @mentioned by name always, the
others only if they turned `chat_group` on. Task and ticket threads notify through their own domains.
"""

import sqlalchemy as sa

from finstack import realtime
from finstack.chat.models import ConversationMember
from finstack.comments.service import mentioned_names
from finstack.extensions import db
from finstack.notifications.models import NotificationSettings
from finstack.notifications.service import Draft, notify
from finstack.users.models import User

SNIPPET = 200


def notify_offline_members(conversation, message, author):
    """Notify, in the sending transaction, the offline members `message` concerns (see the module's rules)."""
    if conversation.kind not in ("direct", "group"):
        return
    members = db.session.execute(
        sa.select(User.id, User.username, sa.func.coalesce(NotificationSettings.chat_group, False))
        .join(ConversationMember, ConversationMember.user_id == User.id)
        .outerjoin(NotificationSettings, NotificationSettings.user_id == User.id)
        .where(
            ConversationMember.conversation_id == conversation.id,
            User.id != author.id,
            User.is_active.is_(True),
        )
    ).all()
    registry = realtime.socket_registry()
    mentioned = set(mentioned_names(message.content or ""))
    text = " ".join((message.content or "").split()) or "(a file)"
    text = text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
    place = "you directly" if conversation.kind == "direct" else f"in {conversation.name or 'a group'}"
    drafts = []
    for user_id, username, wants_groups in members:
        if registry.sids_for_user(user_id):
            continue
        if username in mentioned:
            title = f"{author.username} mentioned you in {conversation.name or 'a group'}"
        elif conversation.kind == "direct" or wants_groups:
            title = f"{author.username} wrote {place}"
        else:
            continue
        drafts.append(Draft(user_id=user_id, type="chat_message", title=title, message=text))
    notify(drafts, actor=author)
