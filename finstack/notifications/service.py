"""Notifications: the one place they are created, stored, and handed on for delivery after commit."""

import uuid
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from finstack import jobs
from finstack.core import mail, permissions
from finstack.core.events import emit_batch_after_commit, user_room
from finstack.core.pagination import paginate
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.models import NOTIFICATION_TYPES, EmailPreference, Notification
from finstack.notifications.schemas import NotificationOut
from finstack.users.models import User

INSERT_CHUNK = 5_000
MAIL_JOB = "mail"


@dataclass(frozen=True)
class Draft:
    user_id: uuid.UUID
    type: str
    title: str
    message: str
    task_id: uuid.UUID | None = None


def _readers_only(drafts):
    """Drop the drafts about a task their recipient may not read (`permissions.task_readers_clause`): one query for
    the tasks in projects among them, then one per such project (a task's readers are its project's)."""
    from finstack.tasks.models import Task  # the task service imports this module: import when needed

    task_ids = {draft.task_id for draft in drafts if draft.task_id is not None}
    if not task_ids:
        return drafts
    in_projects = db.session.scalars(sa.select(Task).where(Task.id.in_(task_ids), Task.project_id.is_not(None)))
    tasks_by_project = defaultdict(list)
    for task in in_projects:
        tasks_by_project[task.project_id].append(task)
    refused = set()
    for tasks in tasks_by_project.values():
        ids = {task.id for task in tasks}
        recipients = {draft.user_id for draft in drafts if draft.task_id in ids}
        readers = set(
            db.session.scalars(
                sa.select(User.id).where(User.id.in_(recipients), permissions.task_readers_clause(User, tasks[0]))
            )
        )
        refused.update((user_id, task_id) for user_id in recipients - readers for task_id in ids)
    return [draft for draft in drafts if (draft.user_id, draft.task_id) not in refused]


def notify(drafts, actor=None):
    """Store `drafts` (never for the actor, nor about a task the recipient may not read), push them live once the
    transaction commits, and enqueue their e-mail as `mail` jobs in the same transaction.

    Returns the stored rows as dicts. Works in bulk: the overdue sweep passes thousands at once.
    """
    drafts = _readers_only(drafts)
    actor_id = getattr(actor, "id", None)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": draft.user_id,
            "type": draft.type,
            "title": draft.title[:200],
            "message": draft.message[:1000],
            "task_id": draft.task_id,
            "actor_id": actor_id,
            "is_read": False,
            "created_at": now,
            "read_at": None,
        }
        for draft in drafts
        if draft.user_id is not None and draft.user_id != actor_id
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        db.session.execute(sa.insert(Notification), rows[start : start + INSERT_CHUNK])
    if rows:
        _push(rows)
        jobs.enqueue_many(MAIL_JOB, _mails_for(rows))
    return rows


def _push(rows):
    """Each notification goes live to its recipient's `user:<id>` room after commit."""
    schema = NotificationOut()
    emit_batch_after_commit([("notification", schema.dump(row), user_room(row["user_id"])) for row in rows])


def _mail_key(rows):
    """The job key of the e-mail about `rows`: a name for that set of notifications, so each is mailed once and every
    retry of the job is the same e-mail (the same Message-ID)."""
    return "mail:" + str(uuid.uuid5(uuid.NAMESPACE_URL, ",".join(sorted(str(row["id"]) for row in rows))))


def _mails_for(rows):
    """`(payload, key)` of one `mail` job per recipient (a digest when several notifications go to one person), per
    preference."""
    by_user = defaultdict(list)
    for row in rows:
        by_user[row["user_id"]].append(row)
    if not mail.mail_enabled():
        return []
    recipients = db.session.execute(
        sa.select(User.id, User.email).where(User.id.in_(by_user), User.is_active.is_(True))
    ).all()
    opted_out = set(
        db.session.execute(
            sa.select(EmailPreference.user_id, EmailPreference.type).where(
                EmailPreference.user_id.in_(by_user), EmailPreference.enabled.is_(False)
            )
        ).all()
    )
    mails = []
    for user_id, email in recipients:
        wanted = [row for row in by_user[user_id] if (user_id, row["type"]) not in opted_out]
        if not wanted:
            continue
        if len(wanted) == 1:
            subject, body = wanted[0]["title"], wanted[0]["message"]
        else:
            subject = f"FinStack: {len(wanted)} new notifications"
            body = "\n".join(f"- {row['title']}: {row['message']}" for row in wanted)
        mails.append(({"to": email, "subject": subject, "body": body}, _mail_key(wanted)))
    return mails


@jobs.handler(MAIL_JOB, max_attempts="MAIL_MAX_ATTEMPTS", retry_delay="MAIL_RETRY_DELAY")
def _send_mail(job):
    """Send one notification e-mail, its Message-ID derived from the job key."""
    if not mail.mail_enabled():
        raise RuntimeError("Mail is off in this process (MAIL_SERVER is unset)")
    mail.send_mail(job.payload["to"], job.payload["subject"], job.payload["body"], key=job.key)


def list_notifications(user, *, page, per_page, cursor=None, unread_only=False, since=None):
    """Newest first; with `since` (a notification id), only later ones, oldest first, for catching up."""
    conditions = [Notification.user_id == user.id]
    if unread_only:
        conditions.append(Notification.is_read.is_(False))
    order = (Notification.created_at.desc(), Notification.id.desc())
    if since is not None:
        cursor = db.session.get(Notification, since)
        if cursor is None or cursor.user_id != user.id:
            raise ApiError(400, "Validation failed", {"since": ["Unknown notification id."]})
        conditions.append(sa.tuple_(Notification.created_at, Notification.id) > (cursor.created_at, cursor.id))
        order = (Notification.created_at.asc(), Notification.id.asc())
    return paginate(
        sa.select(Notification).where(*conditions).order_by(*order), page=page, per_page=per_page, cursor=cursor
    )


def unread_count(user):
    return db.session.scalar(
        sa.select(sa.func.count()).where(Notification.user_id == user.id, Notification.is_read.is_(False))
    )


def mark_read(user, notification_id):
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        raise ApiError(404, "Notification not found")
    if not notification.is_read:
        notification.is_read = True
        notification.read_at = utcnow()
        db.session.commit()
    return notification


def mark_all_read(user):
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user.id, Notification.is_read.is_(False))
        .values(is_read=True, read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def email_preferences(user):
    stored = dict(
        db.session.execute(
            sa.select(EmailPreference.type, EmailPreference.enabled).where(EmailPreference.user_id == user.id)
        ).all()
    )
    return {kind: stored.get(kind, True) for kind in NOTIFICATION_TYPES}


def set_email_preferences(user, choices):
    for kind, enabled in choices.items():
        db.session.merge(EmailPreference(user_id=user.id, type=kind, enabled=enabled))
    db.session.commit()
    return email_preferences(user)
