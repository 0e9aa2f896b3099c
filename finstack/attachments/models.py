import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db


class Attachment(db.Model):
    """A file kept under UPLOAD_FOLDER as `stored_name` (random); `original_name` is the sanitised upload name."""

    __tablename__ = "attachments"
    __table_args__ = (
        # A task's files, in upload order.
        sa.Index("ix_attachments_task_id_created_at", "task_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"))
    uploader_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    original_name: Mapped[str] = mapped_column(sa.String(255))
    stored_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    uploader = relationship("User", foreign_keys=[uploader_id], lazy="joined", innerjoin=True)
