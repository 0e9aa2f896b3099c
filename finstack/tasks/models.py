import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

STATUSES = ("open", "in_progress", "closed", "cancelled")
ACTIVE_STATUSES = ("open", "in_progress")
# SQL: a live task in an active status (a partial index's predicate, so literal).
ACTIVE_LIVE = "deleted_at IS NULL AND status IN ('open', 'in_progress')"
PRIORITIES = ("low", "medium", "high")
TAG_MAX_LENGTH = 40
MAX_TAGS = 20
# Board keys (finstack.tasks.ranks) are at most 32 characters; a rebalance briefly prefixes one. Byte order on
# PostgreSQL too (SQLite compares bytes already), so ORDER BY rank is the keys' ASCII order.
RANK_LENGTH = 64
RANK_TYPE = sa.String(RANK_LENGTH).with_variant(sa.String(RANK_LENGTH, collation="C"), "postgresql")


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.CheckConstraint(sa.column("status").in_(STATUSES), name="status"),
        sa.CheckConstraint(sa.column("priority").in_(PRIORITIES), name="priority"),
        # List filters combined with the default sort (newest first).
        sa.Index("ix_tasks_status_date_created", "status", "date_created"),
        sa.Index("ix_tasks_contact_person_id_date_created", "contact_person_id", "date_created"),
        sa.Index("ix_tasks_created_by_date_created", "created_by", "date_created"),
        sa.Index("ix_tasks_priority_date_created", "priority", "date_created"),
        # An assignee's tasks by due time.
        sa.Index("ix_tasks_contact_person_id_task_time", "contact_person_id", "task_time"),
        # Overdue: active status and task_time in the past.
        sa.Index("ix_tasks_status_task_time", "status", "task_time"),
        # A project's tasks, newest first.
        sa.Index("ix_tasks_project_id_date_created", "project_id", "date_created"),
        # Sorts on a column with many equal values: the index ends in the tie-breaker, so a sorted page reads 21
        # entries instead of sorting a whole group of equal values (migration 0028).
        sa.Index("ix_tasks_entity_name_id", "entity_name", "id"),
        sa.Index("ix_tasks_task_type_id", "task_type", "id"),
        sa.Index("ix_tasks_task_time_id", "task_time", "id"),
        # The trash, oldest first (its listing and `flask tasks purge-trash`).
        sa.Index("ix_tasks_deleted_at", "deleted_at"),
        # A board column in order, and one key per place in it (finstack.tasks.ranks); NULL ranks never collide.
        sa.Index("ix_tasks_project_id_status_rank", "project_id", "status", "rank", unique=True),
        sa.Index("uq_tasks_series_id_occurrence", "series_id", "occurrence", unique=True),
        # Overdue today (finstack.tasks.counts.with_overdue): the live active tasks due in a time range, of everyone
        # or of a project, counted from this small index alone (no visit to the table).
        sa.Index(
            "ix_tasks_active_live_task_time",
            "task_time",
            "project_id",
            postgresql_where=sa.text(ACTIVE_LIVE),
            sqlite_where=sa.text(ACTIVE_LIVE),
        ),
        # PostgreSQL only, in migration 0024 and not here: trigram indexes on entity_name and task_type (the
        # substring filters), the status/priority sort-order indexes and one on `active_due()` (the overdue
        # filter); finstack.tasks.search.include_name keeps them out of the comparison.
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    entity_name: Mapped[str] = mapped_column(sa.String(200))
    task_type: Mapped[str] = mapped_column(sa.String(100))
    task_time: Mapped[object] = mapped_column(UTCDateTime)
    contact_person_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    priority: Mapped[str] = mapped_column(sa.String(8), default="medium")
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    date_created: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, index=True)
    closed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    # When the overdue sweep last notified the assignee; it notifies again only 24 h later.
    overdue_notified_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # Optional: a task with no project behaves as every task did before projects existed.
    project_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("projects.id"))
    # Set when the task is moved to the trash: every read path leaves out rows where it is set (`Task.live`).
    deleted_at: Mapped[object | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    # The card's place in its board column: set for every task in a project, NULL for the others.
    rank: Mapped[str | None] = mapped_column(RANK_TYPE)
    # Recurrence (finstack.tasks.recurrence): the rule, the series every occurrence shares (the first task's id) and
    # this task's place in it. One row per (series, occurrence): two closes at once create one next occurrence.
    repeat: Mapped[dict | None] = mapped_column(sa.JSON)
    series_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    occurrence: Mapped[int | None] = mapped_column(sa.Integer)

    contact_person = relationship("User", foreign_keys=[contact_person_id], lazy="joined")
    creator = relationship("User", foreign_keys=[created_by], lazy="joined", innerjoin=True)
    # Loaded for a whole page of tasks in one extra query (selectin); rows go with their task (ON DELETE CASCADE).
    tag_rows = relationship(
        "TaskTag", lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="TaskTag.tag"
    )
    reminders = relationship(
        "TaskReminder",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(TaskReminder.remind_at, TaskReminder.id)",
    )

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def live(cls):
        """SQL: the task is not in the trash."""
        return cls.deleted_at.is_(None)

    @classmethod
    def active_due(cls):
        """SQL: task_time while the task is active, else NULL; `active_due() < now` is "overdue" (`is_overdue`)."""
        return sa.case((cls.status.in_(ACTIVE_STATUSES), cls.task_time))

    @property
    def is_overdue(self):
        return self.status in ACTIVE_STATUSES and self.task_time < utcnow()

    @property
    def tags(self):
        return sorted(row.tag for row in self.tag_rows)

    @tags.setter
    def tags(self, values):
        """Replace the set of tags, keeping the rows of tags that stay (no delete and insert of one key)."""
        wanted = set(values)
        kept = [row for row in self.tag_rows if row.tag in wanted]
        present = {row.tag for row in kept}
        self.tag_rows = kept + [TaskTag(tag=tag) for tag in sorted(wanted - present)]

    def set_status(self, status, now):
        """Move to `status`, keeping `closed_at` in step: set on closing, cleared on reopening."""
        if status == self.status:
            return
        self.status = status
        self.closed_at = now if status == "closed" else None


class TaskTag(db.Model):
    """One tag of one task; tags are normalised (stripped, lower-cased) before they get here."""

    __tablename__ = "task_tags"
    __table_args__ = (
        # The tag filter and the tag counts look tasks up by tag.
        sa.Index("ix_task_tags_tag_task_id", "tag", "task_id"),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(TAG_MAX_LENGTH), primary_key=True)


REMINDER_KINDS = ("relative", "absolute")


class TaskReminder(db.Model):
    """A reminder of one task: `before_minutes` ahead of its `task_time` (relative) or at a fixed instant (absolute).

    `remind_at` is stored computed, so the reminder sweep finds what is due with one indexed comparison; it is
    recomputed whenever `task_time` moves. `sent_at` is set by the one sweep that claims the reminder.
    """

    __tablename__ = "task_reminders"
    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(REMINDER_KINDS), name="kind"),
        # The sweep: unsent reminders whose time has come.
        sa.Index("ix_task_reminders_sent_at_remind_at", "sent_at", "remind_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    before_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    remind_at: Mapped[object] = mapped_column(UTCDateTime)
    sent_at: Mapped[object | None] = mapped_column(UTCDateTime)

    @property
    def at(self):
        return self.remind_at


# The dimensions of `task_counts` (finstack.tasks.counts): "all" (key ""), one per column counted by, and the due
# days (of all tasks, of each project's).
COUNT_DIMENSIONS = (
    "all",
    "task_type",
    "contact_person",
    "created_by",
    "project",
    "priority",
    "due_day",
    "project_due_day",
)
COUNT_KEY_LENGTH = 100


class TaskCount(db.Model):
    """How many live tasks have `status` in each (dimension, key): kept by database triggers (migrations 0025, 0027).

    `key` is the column's value as text: the task type or priority itself, a UUID as 32 lower-case hex digits, ""
    for NULL (no assignee, no project) and for the dimension "all", the UTC day of `task_time` ('YYYY-MM-DD') for
    "due_day", '<project key>:<day>' for "project_due_day". A row at 0 stays (the next task reuses it).
    """

    __tablename__ = "task_counts"
    __table_args__ = (sa.CheckConstraint(sa.column("dimension").in_(COUNT_DIMENSIONS), name="dimension"),)

    dimension: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(COUNT_KEY_LENGTH), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer)
