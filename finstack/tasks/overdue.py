"""The overdue sweep: tell each assignee about their overdue tasks, once per task per overdue period.

A task is overdue when its `task_time` has passed and it is open or in progress. It is *due a notification* when it
also has an active assignee and was not notified about this overdue period yet: `overdue_notified_at` is empty, older
than 24 hours (000's reminder interval), or older than the current `task_time` (the deadline moved after the last
reminder, so this is a new overdue period).

Set-based and safe to run twice at once: each chunk of tasks is claimed by one UPDATE … RETURNING that sets
`overdue_notified_at` and repeats the eligibility test in its WHERE. On PostgreSQL the candidate rows are locked with
FOR UPDATE SKIP LOCKED, so a concurrent sweep skips what this one holds, and the UPDATE re-checks each row it waited
for; SQLite serialises writers. A task is therefore claimed — and notified — by exactly one sweep. Notifications
are written in the same transaction and e-mailed (one digest per user, per their preferences) after it commits.

The claim is not a user edit: it sets only `overdue_notified_at`, leaving `version` and `updated_at` alone, so
nobody's optimistic-lock check fails because the sweep ran.
"""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from finstack import jobs
from finstack.audit import service as audit
from finstack.core import mail
from finstack.core.locks import bounded_claim
from finstack.core.sql import count_where
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.models import EmailPreference
from finstack.notifications.service import Draft, notify
from finstack.tasks.models import Task
from finstack.users.models import User

NOTIFICATION_TYPE = "task_overdue"
RENOTIFY_AFTER = timedelta(hours=24)
CLAIM_CHUNK = 10_000


@dataclass(frozen=True)
class OverdueCounts:
    overdue_tasks: int  # overdue now, notified or not, assigned or not
    due_tasks: int  # of those, due a notification
    due_users: int  # distinct assignees of the tasks due a notification


@dataclass(frozen=True)
class SweepResult:
    notified_tasks: int
    notified_users: int
    emails_queued: int  # digests queued once the transaction committed (0 when mail is off)


def overdue_clause(task, now):
    """SQL: `task` is overdue at `now` (tasks in the trash never are). Written as `active_due() < now`, which
    PostgreSQL finds in `ix_tasks_active_due`: the claims and the dry run read the overdue tasks, not the table."""
    return sa.and_(task.live(), task.active_due() < now)


def due_clause(task, now):
    """SQL: `task` (the Task entity or an alias of it) is overdue and due a notification at `now`."""
    return sa.and_(
        overdue_clause(task, now),
        task.contact_person_id.is_not(None),
        sa.or_(
            task.overdue_notified_at.is_(None),
            task.overdue_notified_at < now - RENOTIFY_AFTER,
            task.overdue_notified_at < task.task_time,
        ),
        sa.exists().where(User.id == task.contact_person_id, User.is_active.is_(True)),
    )


def count_overdue(now=None):
    """What a sweep at `now` would do, counted by one SQL statement; changes nothing (the dry run)."""
    now = now or utcnow()
    due = due_clause(Task, now)
    row = db.session.execute(
        sa.select(
            sa.func.count().label("overdue_tasks"),
            count_where(due).label("due_tasks"),
            sa.func.count(sa.distinct(sa.case((due, Task.contact_person_id)))).label("due_users"),
        ).where(overdue_clause(Task, now))
    ).one()
    return OverdueCounts(row.overdue_tasks, row.due_tasks, row.due_users)


def _claim(now, limit):
    """Mark up to `limit` due tasks as notified at `now`; returns what the notifications need about them."""
    candidate = aliased(Task)
    candidates = (
        sa.select(candidate.id)
        .where(due_clause(candidate, now))
        .limit(limit)
        .with_for_update(of=candidate, skip_locked=True)  # PostgreSQL; SQLite has no row locks and ignores it
    )
    statement = (
        sa.update(Task)
        .where(Task.id.in_(bounded_claim(candidates, "overdue_candidates")), due_clause(Task, now))
        # Only the claim: `updated_at` is set to itself so its on-update default does not fire.
        .values(overdue_notified_at=now, updated_at=Task.updated_at)
        .returning(Task.id, Task.contact_person_id, Task.entity_name, Task.task_type, Task.task_time)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(statement).all()


def _draft(row):
    due = row.task_time.strftime("%Y-%m-%d %H:%M UTC")
    return Draft(
        user_id=row.contact_person_id,
        type=NOTIFICATION_TYPE,
        title=f"Task overdue: {row.entity_name}",
        message=f"{row.task_type} for {row.entity_name} was due {due} and is still open.",
        task_id=row.id,
    )


def _mail_recipients(user_ids):
    """How many of `user_ids` (active assignees) get an e-mail: those who did not turn overdue mail off."""
    if not mail.mail_enabled() or not user_ids:
        return 0
    opted_out = set(
        db.session.scalars(
            sa.select(EmailPreference.user_id).where(
                EmailPreference.type == NOTIFICATION_TYPE, EmailPreference.enabled.is_(False)
            )
        )
    )
    return len(user_ids - opted_out)


def sweep(now=None, *, chunk_size=CLAIM_CHUNK, progress=None):
    """Claim every task due a notification, notify the assignees, commit; e-mail goes out after the commit.

    One transaction: if anything fails, nothing is claimed or notified and the next run does the work.
    `progress(n)` is called after each claimed chunk.
    """
    now = now or utcnow()
    claimed = []
    try:
        while True:
            rows = _claim(now, chunk_size)
            claimed.extend(rows)
            if progress is not None:
                progress(len(rows))
            if len(rows) < chunk_size:
                break
        users = {row.contact_person_id for row in claimed}
        if claimed:
            notify([_draft(row) for row in claimed])  # no actor: the sweep is nobody, so every assignee is told
            audit.record(
                None,
                "task.overdue_sweep",
                "task",
                changes={"notified_tasks": len(claimed), "notified_users": len(users)},
            )
        emails = _mail_recipients(users)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return SweepResult(notified_tasks=len(claimed), notified_users=len(users), emails_queued=emails)


# The worker runs the sweep every SCHEDULE_OVERDUE_SECONDS (`flask tasks sweep-overdue` stays for cron).
jobs.periodic("tasks.sweep_overdue", "SCHEDULE_OVERDUE_SECONDS")(sweep)
