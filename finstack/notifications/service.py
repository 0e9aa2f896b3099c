"""Notifications: the one place they are created, stored, and handed on for delivery after commit."""

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import aggregate_order_by

from finstack import jobs
from finstack.core import event_log, mail, permissions
from finstack.core.db_types import UTCDateTime
from finstack.core.events import deliver_recorded_after_commit, emit_batch_after_commit, user_room
from finstack.core.pagination import paginate
from finstack.core.sql import insert_rows, json_object
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.models import NOTIFICATION_TYPES, EmailPreference, Notification, NotificationSettings
from finstack.notifications.schemas import NotificationOut
from finstack.users.models import User

INSERT_CHUNK = 5_000
COLLAPSE_CHUNK = 5_000  # task ids per query (SQLite allows 32,766 parameters)
# Each one was asked for (a task's reminders: a day before, then an hour before): never folded into another.
NEVER_COLLAPSED = frozenset({"task_reminder"})
MAIL_JOB = "mail"
DIGEST_MODES = ("hourly", "daily")
DAILY_DIGEST_HOUR = 8


@dataclass(frozen=True)
class Draft:
    user_id: uuid.UUID
    type: str
    title: str
    message: str
    task_id: uuid.UUID | None = None
    ticket_id: uuid.UUID | None = None


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


def _ticket_readers_only(drafts):
    """Drop the drafts about a ticket their recipient may not read (`permissions.can_read_ticket`): three queries
    whatever the number of drafts — the tickets, the recipients, and the recipients' roles in the tickets'
    departments."""
    from finstack.tickets.models import DepartmentAgent, Ticket  # the ticket service imports this module

    about_tickets = [draft for draft in drafts if draft.ticket_id is not None]
    if not about_tickets:
        return drafts
    tickets = {
        row.id: row
        for row in db.session.execute(
            sa.select(Ticket.id, Ticket.requester_id, Ticket.department_id).where(
                Ticket.id.in_({draft.ticket_id for draft in about_tickets})
            )
        )
    }
    recipient_ids = {draft.user_id for draft in about_tickets}
    recipients = {
        row.id: row for row in db.session.execute(sa.select(User.id, User.role).where(User.id.in_(recipient_ids)))
    }
    roles = {
        (row.department_id, row.user_id): row.role
        for row in db.session.execute(
            sa.select(DepartmentAgent.department_id, DepartmentAgent.user_id, DepartmentAgent.role).where(
                DepartmentAgent.user_id.in_(recipient_ids),
                DepartmentAgent.department_id.in_({ticket.department_id for ticket in tickets.values()} - {None}),
            )
        )
    }

    def readable(draft):
        ticket, user = tickets.get(draft.ticket_id), recipients.get(draft.user_id)
        if ticket is None or user is None:
            return False
        return permissions.can_read_ticket(user, ticket, roles.get((ticket.department_id, user.id)))

    return [draft for draft in drafts if draft.ticket_id is None or readable(draft)]


def notify(drafts, actor=None):
    """Store `drafts` (never for the actor, nor about a task or ticket the recipient may not read), push them live once
    the transaction commits, and enqueue their e-mail as `mail` jobs in the same transaction.

    A draft repeating an unread notification of its type (reminders excepted) about its task to its recipient from
    the last NOTIFICATION_COLLAPSE_SECONDS updates that row (message, count, created_at) instead of adding one, and
    enqueues no second e-mail: the one still waiting out its grace reads the row when it is sent.

    Returns the stored rows as dicts. Works in bulk: the overdue sweep passes thousands at once.
    """
    drafts = _ticket_readers_only(_readers_only(drafts))
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
            "ticket_id": draft.ticket_id,
            "actor_id": actor_id,
            "is_read": False,
            "count": 1,
            "created_at": now,
            "read_at": None,
        }
        for draft in drafts
        if draft.user_id is not None and draft.user_id != actor_id
    ]
    fresh, collapsed = _collapse(rows, now)
    for start in range(0, len(fresh), INSERT_CHUNK):
        insert_rows(Notification.__table__, fresh[start : start + INSERT_CHUNK])
    if collapsed:
        table = Notification.__table__
        db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(
                title=sa.bindparam("new_title"),
                message=sa.bindparam("new_message"),
                count=sa.bindparam("new_count"),
                created_at=now,
            ),
            [
                {
                    "row_id": row["id"],
                    "new_title": row["title"],
                    "new_message": row["message"],
                    "new_count": row["count"],
                }
                for row in collapsed
            ],
        )
    stored = fresh + collapsed
    if stored:
        _push(stored)
    if fresh:
        jobs.enqueue_many(
            MAIL_JOB, _mails_for(fresh), run_at=now + timedelta(seconds=current_app.config["MAIL_GRACE_SECONDS"])
        )
    return stored


def notify_from(drafts, *also):
    """PostgreSQL: `notify` for the drafts a SELECT gives (columns user_id, type, title, message, task_id,
    ticket_id), in one statement: the notifications by INSERT … SELECT, their event-log rows and socket payloads
    built beside them (`event_log.record_from`), Python receiving only what the pushes and e-mails after commit need.

    For drafts `notify` would store as they are: no actor, never collapsed (a type in NEVER_COLLAPSED, or about no
    task), recipients present and allowed to read what they are told about (the SELECT checks). `also`: scalar
    subqueries run in the same statement (a claim's count); returns their values.
    """
    now = utcnow()
    source = drafts.cte("drafts")
    table = Notification.__table__
    values = {
        "id": sa.func.gen_random_uuid(),
        "user_id": source.c.user_id,
        "type": source.c.type,
        "title": sa.func.left(source.c.title, 200),
        "message": sa.func.left(source.c.message, 1000),
        "task_id": source.c.task_id,
        "ticket_id": source.c.ticket_id,
        "actor_id": sa.null(),
        "is_read": sa.false(),
        "count": sa.literal(1),
        "created_at": sa.literal(now, UTCDateTime),
        "read_at": sa.null(),
    }
    notes = (
        sa.insert(table)
        .from_select(list(values), sa.select(*values.values()))
        .returning(*(table.c[name] for name in ("id", "user_id", "type", "title", "message", "task_id", "ticket_id")))
        .cte("notes")
    )
    # NotificationOut's fields, in its order; every row has the same created_at.
    created_at = NotificationOut().fields["created_at"].serialize("created_at", {"created_at": now})
    payload = json_object(
        [
            ("id", notes.c.id),
            ("type", notes.c.type),
            ("title", notes.c.title),
            ("message", notes.c.message),
            ("task_id", notes.c.task_id),
            ("ticket_id", notes.c.ticket_id),
            ("actor_id", sa.null()),
            ("is_read", sa.false()),
            ("count", sa.literal_column("1")),
            ("created_at", sa.cast(sa.literal(created_at), sa.Text)),
            ("read_at", sa.null()),
        ]
    )
    events = event_log.record_from("notification", notes, payload, now)
    # In seq order, so that each user's pushes go out in their order, as `notify`'s do.
    recorded = sa.func.json_agg(
        aggregate_order_by(sa.func.json_build_array(events.c.user_id, events.c.seq, events.c.payload), events.c.seq)
    )
    recorded, *answers = db.session.execute(sa.select(sa.select(recorded).scalar_subquery(), *also)).one()
    if recorded:  # json_agg of no rows is NULL
        deliver_recorded_after_commit("notification", recorded)
        if mail.mail_enabled():
            fresh = [{**payload, "user_id": uuid.UUID(user_id)} for user_id, _, payload in recorded]
            jobs.enqueue_many(
                MAIL_JOB, _mails_for(fresh), run_at=now + timedelta(seconds=current_app.config["MAIL_GRACE_SECONDS"])
            )
    return answers


def notify_sweep(drafts):
    """`notify(drafts)` for a sweep's drafts (no actor; a type in NEVER_COLLAPSED, or about no task): on PostgreSQL
    the readers checked as `notify` checks them, then `notify_from` with the drafts as one JSON parameter."""
    if db.session.get_bind().dialect.name != "postgresql":
        notify(drafts)
        return
    rows = [
        {
            "user_id": draft.user_id,
            "type": draft.type,
            "title": draft.title,
            "message": draft.message,
            "task_id": draft.task_id,
            "ticket_id": draft.ticket_id,
        }
        for draft in _ticket_readers_only(_readers_only(drafts))
        if draft.user_id is not None
    ]
    if not rows:
        return
    source = (
        sa.func.json_to_recordset(sa.cast(sa.literal(json.dumps(rows, default=str)), sa.JSON))
        .table_valued(
            sa.column("user_id", sa.Uuid),
            sa.column("type", sa.Text),
            sa.column("title", sa.Text),
            sa.column("message", sa.Text),
            sa.column("task_id", sa.Uuid),
            sa.column("ticket_id", sa.Uuid),
        )
        .render_derived("draft_rows", with_types=True)
    )
    notify_from(sa.select(source))


def _collapse(rows, now):
    """Split `rows` into `(fresh, collapsed)`: those to insert, and those folded into an unread row of the same
    `(user_id, type, task_id)` from the collapse window (the existing row's id, its count plus theirs). Repeats within
    `rows` fold into one as well. One query per COLLAPSE_CHUNK tasks (by the task index; the rows of other
    recipients or types it finds are dropped)."""
    window = current_app.config["NOTIFICATION_COLLAPSE_SECONDS"]
    merged = {}
    fresh = []
    for row in rows:
        key = (row["user_id"], row["type"], row["task_id"])
        if not window or row["task_id"] is None or row["type"] in NEVER_COLLAPSED:
            fresh.append(row)
        elif key in merged:
            merged[key] = {**row, "id": merged[key]["id"], "count": merged[key]["count"] + 1}
        else:
            merged[key] = row
    task_ids = list(dict.fromkeys(task_id for _, _, task_id in merged))
    types = list({kind for _, kind, _ in merged})
    existing = {}
    for start in range(0, len(task_ids), COLLAPSE_CHUNK):
        found = db.session.execute(
            sa.select(
                Notification.id, Notification.user_id, Notification.type, Notification.task_id, Notification.count
            )
            .where(
                Notification.task_id.in_(task_ids[start : start + COLLAPSE_CHUNK]),
                Notification.type.in_(types),
                Notification.is_read.is_(False),
                Notification.created_at >= now - timedelta(seconds=window),
            )
            .order_by(Notification.created_at)  # the newest of several wins
        )
        # A task's rows all come in one chunk; those of other recipients or types are no repeat.
        for row in found:
            key = (row.user_id, row.type, row.task_id)
            if key in merged:
                existing[key] = row
    collapsed = []
    for key, row in merged.items():
        if key in existing:
            collapsed.append({**row, "id": existing[key].id, "count": existing[key].count + row["count"]})
        else:
            fresh.append(row)
    return fresh, collapsed


def _push(rows):
    """Each notification goes live to its recipient's `user:<id>` room after commit."""
    schema = NotificationOut()
    emit_batch_after_commit([("notification", schema.dump(row), user_room(row["user_id"])) for row in rows])


def _mail_key(rows):
    """The job key of the e-mail about `rows`: a name for that set of notifications, so each is mailed once and every
    retry of the job is the same e-mail (the same Message-ID)."""
    return "mail:" + str(uuid.uuid5(uuid.NAMESPACE_URL, ",".join(sorted(str(row["id"]) for row in rows))))


def _mails_for(rows):
    """`(payload, key)` of one `mail` job per recipient whose delivery mode is `immediate` (a digest when several
    notifications go to one person), per type preference. The payload names the notifications: the handler mails
    the ones still unread when it runs."""
    by_user = defaultdict(list)
    for row in rows:
        by_user[row["user_id"]].append(row)
    if not mail.mail_enabled():
        return []
    recipients = db.session.execute(
        sa.select(User.id, User.email)
        .outerjoin(NotificationSettings, NotificationSettings.user_id == User.id)
        .where(
            User.id.in_(by_user),
            User.is_active.is_(True),
            sa.func.coalesce(NotificationSettings.delivery_mode, "immediate") == "immediate",
        )
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
        if wanted:
            payload = {"to": email, **_mail_text(wanted), "notification_ids": [str(row["id"]) for row in wanted]}
            mails.append((payload, _mail_key(wanted)))
    return mails


def _mail_text(rows):
    """Subject and body of the e-mail about `rows` (dicts with title, message, count)."""
    lines = [(row["title"] + (f" (x{row['count']})" if row["count"] > 1 else ""), row["message"]) for row in rows]
    if len(lines) == 1:
        return {"subject": lines[0][0], "body": lines[0][1]}
    return {
        "subject": f"FinStack: {len(lines)} new notifications",
        "body": "\n".join(f"- {title}: {message}" for title, message in lines),
    }


@jobs.handler(MAIL_JOB, max_attempts="MAIL_MAX_ATTEMPTS", retry_delay="MAIL_RETRY_DELAY")
def _send_mail(job):
    """Send one notification e-mail, its Message-ID derived from the job key. A payload naming notifications is
    re-read first: those read in the app meanwhile (the mail grace) are left out, and nothing is sent if all were;
    the text is that of the rows now (a collapsed repeat updated them)."""
    if not mail.mail_enabled():
        raise RuntimeError("Mail is off in this process (MAIL_SERVER is unset)")
    payload = job.payload
    if "notification_ids" in payload:
        unread = db.session.scalars(
            sa.select(Notification)
            .where(
                Notification.id.in_([uuid.UUID(i) for i in payload["notification_ids"]]),
                Notification.is_read.is_(False),
            )
            .order_by(Notification.created_at, Notification.id)
        ).all()
        if not unread:
            return
        payload = {
            **payload,
            **_mail_text([{"title": n.title, "message": n.message, "count": n.count} for n in unread]),
        }
    mail.send_mail(payload["to"], payload["subject"], payload["body"], key=job.key)


def list_notifications(user, *, page, per_page, cursor=None, unread_only=False, since=None):
    """Newest first; with `since` (a notification id), only later ones, oldest first, for catching up."""
    conditions = [Notification.user_id == user.id]
    if unread_only:
        conditions.append(Notification.is_read.is_(False))
    order = (Notification.created_at.desc(), Notification.id.desc())
    if since is not None:
        seen = db.session.get(Notification, since)
        if seen is None or seen.user_id != user.id:
            raise ApiError(400, "Validation failed", {"since": ["Unknown notification id."]})
        conditions.append(sa.tuple_(Notification.created_at, Notification.id) > (seen.created_at, seen.id))
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


def notification_settings(user):
    settings = db.session.get(NotificationSettings, user.id)
    if settings is None:
        return {"delivery_mode": "immediate", "chat_group": False}
    return {"delivery_mode": settings.delivery_mode, "chat_group": settings.chat_group}


def set_notification_settings(user, choices):
    """Store the given choices. Switching to a digest mode starts its first period now: earlier notifications had
    their chance by e-mail already."""
    settings = db.session.get(NotificationSettings, user.id) or NotificationSettings(
        user_id=user.id, delivery_mode="immediate", chat_group=False
    )
    mode = choices.get("delivery_mode", settings.delivery_mode)
    if mode != settings.delivery_mode and mode in DIGEST_MODES:
        settings.last_digest_at = utcnow()
    settings.delivery_mode = mode
    settings.chat_group = choices.get("chat_group", settings.chat_group)
    db.session.add(settings)
    db.session.commit()
    return notification_settings(user)


def _period_start(mode, now, zone):
    """The start of the digest period `now` is in: the hour, or 08:00 of the day (the previous day's before 08:00),
    in `zone`."""
    local = now.astimezone(zone)
    if mode == "hourly":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=DAILY_DIGEST_HOUR, minute=0, second=0, microsecond=0)
        if start > local:
            start -= timedelta(days=1)
    return start.astimezone(UTC)


@jobs.periodic("notifications.digest", "SCHEDULE_DIGEST_SECONDS")
def send_digests():
    """For each user on an hourly or daily digest whose period turned since the last one: one `mail` job naming
    their unread notifications created since (minus the types they turned off), then the period is marked done.
    Returns how many digests were enqueued. Hours and 08:00 are the user's (`users.timezone`)."""
    now = utcnow()
    due = [
        (settings, email)
        for settings, email, timezone in db.session.execute(
            sa.select(NotificationSettings, User.email, User.timezone)
            .join(User, User.id == NotificationSettings.user_id)
            .where(NotificationSettings.delivery_mode.in_(DIGEST_MODES), User.is_active.is_(True))
        )
        if settings.last_digest_at is None
        or settings.last_digest_at < _period_start(settings.delivery_mode, now, ZoneInfo(timezone))
    ]
    if not due:
        return 0
    since = {settings.user_id: settings.last_digest_at for settings, _ in due}
    opted_out = sa.exists().where(
        EmailPreference.user_id == Notification.user_id,
        EmailPreference.type == Notification.type,
        EmailPreference.enabled.is_(False),
    )
    pending = defaultdict(list)
    for row in db.session.execute(
        sa.select(Notification.id, Notification.user_id, Notification.created_at)
        .where(
            Notification.user_id.in_(since), Notification.is_read.is_(False), Notification.created_at <= now, ~opted_out
        )
        .order_by(Notification.created_at, Notification.id)
    ):
        if since[row.user_id] is None or row.created_at > since[row.user_id]:
            pending[row.user_id].append(str(row.id))
    mails = [
        (
            {"to": email, "subject": "FinStack digest", "body": "", "notification_ids": pending[settings.user_id]},
            f"digest:{settings.user_id}:{now.isoformat()}",
        )
        for settings, email in due
        if pending[settings.user_id]
    ]
    if mail.mail_enabled():
        jobs.enqueue_many(MAIL_JOB, mails)
    for settings, _ in due:
        settings.last_digest_at = now
    db.session.commit()
    return len(mails)
