import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

STATUSES = ("queued", "running", "done", "failed")
# A job a worker may claim: queued and due, or running with a lapsed lease (its worker died).
CLAIMABLE = ("queued", "running")


def claimable(status):
    """SQL: `status` is one of CLAIMABLE, written as literals (not bound parameters) so that the databases see that
    the query's condition is the partial index's and use the index (SQLite matches the terms as written)."""
    return status.in_([sa.literal(value, literal_execute=True) for value in CLAIMABLE])


class Job(db.Model):
    """One side effect to carry out at least once (an e-mail, a sweep), written in the transaction that causes it.

    `run_at` is when the job is next due: for a queued job, when it may first run or be retried; for a running one,
    when its lease lapses (the same instant as `locked_until`), so one condition (`status IN ('queued', 'running')
    AND run_at <= now`) and one partial index find every job a worker may claim.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(STATUSES), name="status"),
        sa.Index(
            "ix_jobs_due",
            "run_at",
            sqlite_where=sa.column("status").in_(CLAIMABLE),
            postgresql_where=sa.column("status").in_(CLAIMABLE),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    # Idempotency: enqueueing a key that exists stores nothing.
    key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    run_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(sa.String(200))
    locked_until: Mapped[object | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)


class JobSchedule(db.Model):
    """When a periodic job is next due. A worker whose UPDATE moves `next_run_at` on is the one that enqueues it, so
    each period runs once across every worker."""

    __tablename__ = "job_schedules"

    kind: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    next_run_at: Mapped[object] = mapped_column(UTCDateTime)
