"""Durable jobs: enqueue in the caller's transaction, claim with a lease, finish, retry with back-off.

Handlers are registered by kind (`@handler("mail")`); periodic ones by kind and the setting holding their interval
(`@periodic("tasks.sweep_overdue", "SCHEDULE_OVERDUE_SECONDS")`). The worker (`finstack.jobs.worker`) drives the
functions here; nothing here runs a handler.
"""

import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from finstack.core.events import after_commit
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs.models import Job, JobSchedule, claimable

log = logging.getLogger(__name__)

INSERT_CHUNK = 5_000
MAX_RETRY_DELAY = timedelta(hours=1)
ERROR_LENGTH = 2_000


@dataclass(frozen=True)
class Handler:
    run: Callable[["ClaimedJob"], Any]
    max_attempts: str  # the config keys of its retry policy
    retry_delay: str


@dataclass(frozen=True)
class ClaimedJob:
    """What a handler gets: the job as claimed, `attempt` counting from 1."""

    id: uuid.UUID
    kind: str
    key: str | None
    payload: dict
    attempt: int


_handlers: dict[str, Handler] = {}
_schedules: dict[str, str] = {}  # kind -> the config key of its interval in seconds
# Set after a transaction that enqueued jobs commits: an in-process worker waiting for work wakes at once.
enqueued = threading.Event()


def handler(kind, *, max_attempts="JOB_MAX_ATTEMPTS", retry_delay="JOB_RETRY_DELAY"):
    """Register `fn(job: ClaimedJob)` for `kind`. It runs outside any transaction of the queue's; raising retries the
    job (after `retry_delay` * 2^(attempt-1) seconds, with jitter) until `max_attempts`, then the job fails."""

    def register(fn):
        _handlers[kind] = Handler(fn, max_attempts, retry_delay)
        return fn

    return register


def periodic(kind, interval_setting):
    """Register `fn()` to run every `config[interval_setting]` seconds (0: never) as a job of `kind`."""

    def register(fn):
        handler(kind)(lambda job: fn())
        _schedules[kind] = interval_setting
        return fn

    return register


def handler_for(kind):
    return _handlers.get(kind)


def _insert_ignoring_duplicate_keys():
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(Job).on_conflict_do_nothing(index_elements=["key"])


def enqueue(kind, payload, key=None, run_at=None):
    """Write a job in the caller's transaction (no commit): it exists, and runs, only if that transaction commits.
    A `key` already stored stores nothing."""
    enqueue_many(kind, [(payload, key)], run_at=run_at)


def enqueue_many(kind, items, run_at=None):
    """`enqueue` for each `(payload, key)` of `items`, in bulk."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "kind": kind,
            "payload": payload,
            "key": key,
            "status": "queued",
            "attempts": 0,
            "run_at": run_at or now,
            "created_at": now,
        }
        for payload, key in items
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        db.session.execute(_insert_ignoring_duplicate_keys(), rows[start : start + INSERT_CHUNK])
    if rows:
        after_commit(enqueued.set)


def claim(worker_name, *, now=None, kinds=None):
    """Take the job due longest, leasing it to `worker_name` for JOB_LEASE_SECONDS; commits. Returns a ClaimedJob
    or None.

    PostgreSQL: the candidate row is locked with FOR UPDATE SKIP LOCKED, so concurrent workers take different jobs
    and never wait on each other. SQLite: the UPDATE is the transaction's first statement, so it holds the database's
    write lock from its own SELECT to its commit, and workers take turns.
    """
    now = now or utcnow()
    lease_end = now + timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"])

    def due(job):
        conditions = [claimable(job.status), job.run_at <= now]
        if kinds is not None:
            conditions.append(job.kind.in_(kinds))
        return sa.and_(*conditions)

    candidate = aliased(Job)
    candidates = (
        sa.select(candidate.id)
        .where(due(candidate))
        .order_by(candidate.run_at)
        .limit(1)
        .with_for_update(of=candidate, skip_locked=True)
    )
    statement = (
        sa.update(Job)
        # `=` a scalar subquery, which PostgreSQL runs once (an InitPlan); under `IN` it may run it again per row,
        # each run skipping the rows the previous ones locked, and claim them all.
        .where(Job.id == candidates.scalar_subquery(), due(Job))
        .values(
            status="running",
            attempts=Job.attempts + 1,
            locked_by=worker_name,
            locked_until=lease_end,
            run_at=lease_end,
        )
        .returning(Job.id, Job.kind, Job.key, Job.payload, Job.attempts)
        .execution_options(synchronize_session=False)
    )
    try:
        row = db.session.execute(statement).first()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if row is None:
        return None
    return ClaimedJob(id=row.id, kind=row.kind, key=row.key, payload=row.payload, attempt=row.attempts)


def extend_lease(job, worker_name):
    """Push the lease of a job `worker_name` is running JOB_LEASE_SECONDS on from now; commits. False if it lost
    the job meanwhile."""
    lease_end = utcnow() + timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"])
    try:
        result = db.session.execute(
            sa.update(Job)
            .where(
                Job.id == job.id,
                Job.status == "running",
                Job.locked_by == worker_name,
                Job.attempts == job.attempt,
            )
            .values(locked_until=lease_end, run_at=lease_end)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return result.rowcount == 1


def _settle(job, worker_name, **values):
    """Update `job` if `worker_name` still holds it; commits. False when its lease lapsed and another worker took
    it over (that worker's outcome is the one that counts)."""
    try:
        result = db.session.execute(
            sa.update(Job)
            .where(Job.id == job.id, Job.locked_by == worker_name, Job.attempts == job.attempt)
            .values(locked_by=None, locked_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if result.rowcount == 0:
        log.warning("Job %s (%s) was taken over by another worker after its lease lapsed", job.id, job.kind)
    return result.rowcount == 1


def mark_done(job, worker_name):
    now = utcnow()
    return _settle(job, worker_name, status="done", finished_at=now, run_at=now)


def retry_delay(job_handler, attempt):
    """Exponential back-off with jitter: a random point in the upper half of base * 2^(attempt-1), at most 1 h."""
    base = current_app.config[job_handler.retry_delay]
    ceiling = min(base * 2 ** min(attempt - 1, 32), MAX_RETRY_DELAY.total_seconds())
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def max_attempts(job_handler):
    return current_app.config[job_handler.max_attempts]


def mark_failed_attempt(job, worker_name, error):
    """Reschedule `job` after its back-off, or fail it for good once it used its attempts. Returns the new status."""
    job_handler = handler_for(job.kind)
    now = utcnow()
    error = error[:ERROR_LENGTH]
    if job_handler is None or job.attempt >= max_attempts(job_handler):
        _settle(job, worker_name, status="failed", last_error=error, finished_at=now, run_at=now)
        return "failed"
    _settle(job, worker_name, status="queued", last_error=error, run_at=now + retry_delay(job_handler, job.attempt))
    return "queued"


def pending(*, kinds=None, created_since=None):
    """How many jobs are still to run (queued or running), optionally of `kinds` created since a moment."""
    conditions = [claimable(Job.status)]
    if kinds is not None:
        conditions.append(Job.kind.in_(kinds))
    if created_since is not None:
        conditions.append(Job.created_at >= created_since)
    return db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(*conditions))


# --- Schedules ---------------------------------------------------------------------------------------------------


def schedule_due(now=None):
    """Enqueue each periodic job whose period has come, and move its `next_run_at` on by its interval; commits.

    The UPDATE … WHERE next_run_at <= now is the claim: of workers ticking at once, one moves the row on (PostgreSQL
    makes the others wait for its row lock, then re-check and find it moved; SQLite serialises them), so one
    enqueues. Returns the kinds it enqueued.
    """
    now = now or utcnow()
    intervals = {kind: current_app.config[setting] for kind, setting in _schedules.items()}
    active = {kind: seconds for kind, seconds in intervals.items() if seconds > 0}
    started = []
    try:
        if active:
            dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
            db.session.execute(
                dialect.insert(JobSchedule).on_conflict_do_nothing(index_elements=["kind"]),
                [{"kind": kind, "next_run_at": now} for kind in active],
            )
        for kind, seconds in active.items():
            moved = db.session.execute(
                sa.update(JobSchedule)
                .where(JobSchedule.kind == kind, JobSchedule.next_run_at <= now)
                .values(next_run_at=now + timedelta(seconds=seconds))
                .returning(JobSchedule.kind)
                .execution_options(synchronize_session=False)
            ).first()
            if moved is not None:
                enqueue(kind, {}, key=f"{kind}@{now.isoformat()}")
                started.append(kind)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return started


def prune(now=None):
    """Delete the jobs done more than JOB_RETENTION_DAYS ago; commits. Failed jobs stay for an operator to read.
    Their keys go with them: a key is an idempotency key for the retention period."""
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["JOB_RETENTION_DAYS"])
    try:
        deleted = db.session.execute(
            sa.delete(Job)
            .where(Job.status == "done", Job.finished_at < cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return deleted


periodic("jobs.prune", "SCHEDULE_PRUNE_JOBS_SECONDS")(prune)
