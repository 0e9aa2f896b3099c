"""Task reminders: stored with their time computed, sent once each by the reminder sweep.

A reminder is `{"before_minutes": n}` (n minutes before the task's `task_time`, recomputed whenever it moves) or
`{"at": instant}`. The sweep (the worker's `tasks.send_reminders` schedule, or `flask tasks send-reminders`) claims
the unsent reminders whose time has come, of live open or in-progress tasks, and notifies the task's assignee — the
creator when nobody is assigned — as a `task_reminder` notification (live event and e-mail per preference follow).

Exactly once, as the overdue sweep: each chunk is claimed by one UPDATE … RETURNING that sets `sent_at` and repeats
the eligibility test in its WHERE; on PostgreSQL the candidates are locked FOR UPDATE SKIP LOCKED, so two sweeps at
once never take one reminder, and SQLite serialises writers. Reminders of closed, cancelled or trashed tasks are
not sent (they stay unsent: a reopened task gets those whose time has come at the next sweep). On PostgreSQL the claim
(of every due reminder at once: chunked claims re-walked the index entries of the reminders claimed before them in the
same transaction) and the notifications are one statement; SQLite claims in chunks and notifies from Python.
"""

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from finstack import jobs
from finstack.core import permissions
from finstack.core.locks import bounded_claim
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.service import Draft, notify, notify_from
from finstack.tasks.models import ACTIVE_STATUSES, Task, TaskReminder
from finstack.users.models import User

NOTIFICATION_TYPE = "task_reminder"
CLAIM_CHUNK = 10_000


def _spec_key(spec):
    return ("relative", spec["before_minutes"]) if "before_minutes" in spec else ("absolute", spec["at"])


def _row_key(row):
    return ("relative", row.before_minutes) if row.kind == "relative" else ("absolute", row.remind_at)


def set_reminders(task, specs):
    """Replace the task's reminders by `specs` (loaded ReminderIn dicts); a reminder given again keeps its row, so
    one already sent is not sent again."""
    wanted = list(dict.fromkeys(_spec_key(spec) for spec in specs))
    kept = {_row_key(row): row for row in task.reminders if _row_key(row) in wanted}
    rows = []
    for kind, value in wanted:
        if (kind, value) in kept:
            rows.append(kept[(kind, value)])
        elif kind == "relative":
            rows.append(TaskReminder(kind=kind, before_minutes=value, remind_at=task.task_time - _minutes(value)))
        else:
            rows.append(TaskReminder(kind=kind, remind_at=value))
    task.reminders = rows


def task_time_moved(task):
    """Recompute the relative reminders after `task_time` changed; one whose time moves will be sent again."""
    for row in task.reminders:
        if row.kind == "relative":
            remind_at = task.task_time - _minutes(row.before_minutes)
            if remind_at != row.remind_at:
                row.remind_at = remind_at
                row.sent_at = None


def copy_for(task, new_task_time):
    """The reminders of `task` for an occurrence at `new_task_time`: relative ones as they are, absolute ones moved
    by as much as the task time moved."""
    shift = new_task_time - task.task_time
    return [
        {"before_minutes": row.before_minutes} if row.kind == "relative" else {"at": row.remind_at + shift}
        for row in task.reminders
    ]


def _minutes(count):
    return timedelta(minutes=count)


def _recipient(task):
    """SQL: who is reminded — the assignee, or the creator of an unassigned task."""
    return sa.func.coalesce(task.contact_person_id, task.created_by)


def due_clause(reminder, now):
    """SQL: `reminder` is unsent, its time has come, and its task is live, active and has an active recipient."""
    return sa.and_(
        reminder.sent_at.is_(None),
        reminder.remind_at <= now,
        sa.exists().where(
            Task.id == reminder.task_id,
            Task.live(),
            Task.status.in_(ACTIVE_STATUSES),
            sa.exists().where(User.id == _recipient(Task), User.is_active.is_(True)),
        ),
    )


def _claim_statement(now, limit=None):
    """UPDATE … RETURNING task_id: claim the due reminders (at most `limit`, the earliest first)."""
    candidate = aliased(TaskReminder)
    candidates = (
        sa.select(candidate.id).where(due_clause(candidate, now)).with_for_update(of=candidate, skip_locked=True)
    )
    if limit is not None:
        candidates = candidates.order_by(candidate.remind_at).limit(limit)
    return (
        sa.update(TaskReminder)
        .where(TaskReminder.id.in_(bounded_claim(candidates, "reminder_candidates")), due_clause(TaskReminder, now))
        .values(sent_at=now)
        .returning(TaskReminder.task_id)
    )


def _claim(now, limit):
    statement = _claim_statement(now, limit).execution_options(synchronize_session=False)
    return db.session.scalars(statement).all()


def _notify_claimed_in_sql(now):
    """PostgreSQL: claim every due reminder and notify in one statement (`notify_from`): the drafts are worded by
    the database as `_drafts` words them, and `_readers_only`'s rule is its WHERE. Returns how many were claimed."""
    claimed = _claim_statement(now).cte("claimed")
    recipient = _recipient(Task)
    due = sa.func.to_char(sa.func.timezone(User.timezone, Task.task_time), "YYYY-MM-DD HH24:MI")
    drafts = (
        sa.select(
            recipient.label("user_id"),
            sa.literal(NOTIFICATION_TYPE).label("type"),
            ("Reminder: " + Task.entity_name).label("title"),
            (Task.task_type + " for " + Task.entity_name + " is due " + due + " (" + User.timezone + ").").label(
                "message"
            ),
            Task.id.label("task_id"),
            sa.cast(sa.null(), sa.Uuid).label("ticket_id"),
        )
        .join_from(claimed, Task, Task.id == claimed.c.task_id)
        .join(User, User.id == recipient)
        .where(sa.or_(Task.project_id.is_(None), permissions.task_readers_clause(User, Task)))
    )
    (count,) = notify_from(drafts, sa.select(sa.func.count()).select_from(claimed).scalar_subquery())
    return count


def _drafts(task_ids):
    """One draft per claimed reminder (a task with two due at once gets two), worded in the recipient's time zone."""
    recipient = _recipient(Task)
    rows = db.session.execute(
        sa.select(Task.id, Task.entity_name, Task.task_type, Task.task_time, recipient.label("user_id"), User.timezone)
        .join(User, User.id == recipient)
        .where(Task.id.in_(set(task_ids)))
    )
    tasks = {row.id: row for row in rows}
    zones = {}
    drafts = []
    for task_id in task_ids:
        row = tasks[task_id]
        zone = zones.get(row.timezone) or zones.setdefault(row.timezone, ZoneInfo(row.timezone))
        due = row.task_time.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        drafts.append(
            Draft(
                user_id=row.user_id,
                type=NOTIFICATION_TYPE,
                title=f"Reminder: {row.entity_name}",
                message=f"{row.task_type} for {row.entity_name} is due {due} ({row.timezone}).",
                task_id=row.id,
            )
        )
    return drafts


@dataclass(frozen=True)
class SendResult:
    sent: int  # reminders claimed and notified by this run


def send_due(now=None, *, chunk_size=CLAIM_CHUNK):
    """Claim every due reminder, notify, commit (one transaction: on failure nothing is claimed)."""
    now = now or utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        try:
            sent = _notify_claimed_in_sql(now)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return SendResult(sent=sent)
    claimed = []
    try:
        while True:
            task_ids = _claim(now, chunk_size)
            claimed.extend(task_ids)
            if len(task_ids) < chunk_size:
                break
        if claimed:
            notify(_drafts(claimed))  # no actor: the sweep is nobody, so the recipient is always told
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return SendResult(sent=len(claimed))


# The worker sends due reminders every SCHEDULE_REMINDERS_SECONDS (`flask tasks send-reminders` stays for cron).
jobs.periodic("tasks.send_reminders", "SCHEDULE_REMINDERS_SECONDS")(send_due)
