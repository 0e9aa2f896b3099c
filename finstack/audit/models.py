import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db


class AuditLog(db.Model):
    """Append-only record of every write: who, what, which record, which fields before → after."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        sa.Index("ix_audit_logs_entity", "entity_type", "entity_id", "created_at"),
        sa.Index("ix_audit_logs_actor_created_at", "actor_id", "created_at"),
        sa.Index("ix_audit_logs_action_created_at", "action", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    # No foreign key: the log outlives the records it describes.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    # Who acted when no user did, e.g. `cli:root` for the `flask` CLI run by the OS user root.
    actor_label: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity_type: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    task_links = relationship("AuditLogTask", lazy="raise")
    # Loaded only where asked for (the activity lists); the user may be gone, so no foreign key holds it.
    actor = relationship("User", primaryjoin="foreign(AuditLog.actor_id) == User.id", lazy="raise", viewonly=True)


class AuditLogTask(db.Model):
    """An entry is about these tasks: the task's own writes, its comments and files, each task of a bulk change.

    `created_at` repeats the entry's, so a task's history is one range scan of (task_id, created_at), newest first.
    No foreign key to the task: like the log, the links outlive it (and the purge of the trash).
    """

    __tablename__ = "audit_log_tasks"
    __table_args__ = (sa.Index("ix_audit_log_tasks_task_id_created_at", "task_id", "created_at", "audit_id"),)

    audit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("audit_logs.id"), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime)
