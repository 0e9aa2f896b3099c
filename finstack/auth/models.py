import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db


class RevokedToken(db.Model):
    """A token revoked before its expiry (logout). Rows past `expires_at` can be purged."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    token_type: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[object] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
