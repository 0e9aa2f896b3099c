"""Comments on tasks: the thread, posting, editing, deleting, and who hears about it.

Every authenticated user may read and comment on any task (every user may read tasks).

Who is notified when a comment is posted (never the author, and each person once per comment):
- users `@mentioned` in it get "mentioned";
- the task's creator and assignee get "task_commented", unless they are also mentioned: the mention
  is the more specific news, so it replaces the general one rather than doubling it.
Editing a comment notifies only users mentioned for the first time by the edit.
"""

import re

import sqlalchemy as sa

from finstack.audit import service as audit
from finstack.comments.models import Comment
from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.sql import in_values
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.tasks import service as tasks
from finstack.tasks import signals as task_signals
from finstack.users.models import User

# `@name` not glued to a preceding word, address or mention (so "ann@example.com" mentions nobody).
MENTION = re.compile(r"(?<![\w@.-])@([\w.-]+)")
SNIPPET = 280


def mentioned_names(content):
    """The `@names` written in `content`, in order, without repeats."""
    return list(dict.fromkeys(MENTION.findall(content)))


def _active_user_ids_by_username(*texts):
    """username → id for every active user any of `texts` may mention, in one query.

    A name may end a sentence ("thanks @ann."), so the name without trailing dots and dashes is
    tried too; an exact username wins when both exist.
    """
    candidates = set()
    for text in texts:
        for name in mentioned_names(text):
            candidates.update({name, name.rstrip(".-")})
    candidates.discard("")
    if not candidates:
        return {}
    rows = db.session.execute(
        sa.select(User.username, User.id).where(User.username.in_(candidates), User.is_active.is_(True))
    ).all()
    return dict(rows)


def _mentioned_ids(content, known):
    ids = []
    for name in mentioned_names(content):
        user_id = known.get(name) or known.get(name.rstrip(".-"))
        if user_id is not None and user_id not in ids:
            ids.append(user_id)
    return ids


def _snippet(content):
    content = " ".join(content.split())
    return content if len(content) <= SNIPPET else content[: SNIPPET - 1] + "…"


def _mention_drafts(actor, task, comment, user_ids):
    return [
        Draft(
            user_id=user_id,
            type="mentioned",
            title=f"{actor.full_name} mentioned you on {task.entity_name}",
            message=_snippet(comment.content),
            task_id=task.id,
        )
        for user_id in user_ids
    ]


def _get_comment(actor, task_id, comment_id):
    """The task's comment, or 404 when the task (or the actor's right to read it), the comment, or the pair does
    not exist."""
    task = tasks.get_readable_task(actor, task_id)
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.task_id != task.id:
        raise ApiError(404, "Comment not found")
    return task, comment


def list_comments(actor, task_id, *, page, per_page, cursor=None):
    """A task's thread, oldest first."""
    task = tasks.get_readable_task(actor, task_id)
    statement = sa.select(Comment).where(Comment.task_id == task.id).order_by(Comment.created_at, Comment.id)
    return paginate(
        statement,
        page=page,
        per_page=per_page,
        cursor=cursor,
        count_statement=sa.select(Comment.id).where(Comment.task_id == task.id),
    )


def create_comment(actor, task_id, content):
    task = tasks.get_readable_task(actor, task_id)
    comment = Comment(task_id=task.id, author_id=actor.id, content=content)
    db.session.add(comment)
    db.session.flush()
    audit.record(actor, "comment.create", "comment", comment.id, {"task_id": task.id, "content": content})

    mentioned = _mentioned_ids(content, _active_user_ids_by_username(content))
    owners = [
        user_id for user_id in dict.fromkeys((task.created_by, task.contact_person_id)) if user_id not in mentioned
    ]
    drafts = _mention_drafts(actor, task, comment, mentioned)
    drafts += [
        Draft(
            user_id=user_id,
            type="task_commented",
            title=f"{actor.full_name} commented on {task.entity_name}",
            message=_snippet(content),
            task_id=task.id,
        )
        for user_id in owners
    ]
    notify(drafts, actor)  # drops the actor and missing assignees
    db.session.commit()
    return comment


def update_comment(actor, task_id, comment_id, content):
    """The author rewrites their comment; people it mentions for the first time are notified."""
    task, comment = _get_comment(actor, task_id, comment_id)
    permissions.require(permissions.can_edit_comment(actor, comment), "Only the comment's author may edit it")
    if content == comment.content:
        return comment
    known = _active_user_ids_by_username(comment.content, content)
    already = set(_mentioned_ids(comment.content, known))
    newly_mentioned = [user_id for user_id in _mentioned_ids(content, known) if user_id not in already]

    changes = {"task_id": task.id, **audit.diff(comment, {"content": content})}
    audit.record(actor, "comment.update", "comment", comment.id, changes)
    comment.content = content
    comment.edited_at = utcnow()
    notify(_mention_drafts(actor, task, comment, newly_mentioned), actor)
    db.session.commit()
    return comment


def delete_comment(actor, task_id, comment_id):
    task, comment = _get_comment(actor, task_id, comment_id)
    permissions.require(
        permissions.can_delete_comment(actor, comment),
        "Only the comment's author, a manager or an admin may delete it",
    )
    audit.record(
        actor,
        "comment.delete",
        "comment",
        comment.id,
        {"task_id": task.id, "author_id": comment.author_id, "content": comment.content},
    )
    db.session.delete(comment)
    db.session.commit()


def delete_for_tasks(task_ids):
    """Delete every comment of `task_ids` (ids, or a SELECT of them) in the caller's transaction (which commits);
    returns the count.

    The foreign key cascades too; this deletes them set-based whatever the database enforces. The session is not
    searched for the deleted comments (a purge of 10,000 tasks would read back every id for that): the purge that
    calls this loads none, and a caller holding some must not use them after the commit.
    """
    result = db.session.execute(
        sa.delete(Comment).where(in_values(Comment.task_id, task_ids)).execution_options(synchronize_session=False)
    )
    return result.rowcount


@task_signals.tasks_purged.connect
def _on_tasks_purged(sender, task_ids):
    delete_for_tasks(task_ids)
