import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db

MAX_CONTENT = 5000


class Comment(db.Model):
    __tablename__ = "comments"
    __table_args__ = (
        # A task's thread, oldest first.
        sa.Index("ix_comments_task_id_created_at", "task_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    content: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when the author changes the text; None for a comment never edited.
    edited_at: Mapped[object | None] = mapped_column(UTCDateTime)

    author = relationship("User", foreign_keys=[author_id], lazy="joined", innerjoin=True)

    @property
    def edited(self):
        return self.edited_at is not None
