import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from finstack.core.db_types import UTCDateTime
from finstack.core.time import utcnow
from finstack.extensions import db


class TokenFamily(db.Model):
    """One sign-in: every refresh token rotated from it, and the access tokens they issued, carry its id (`fam`).

    `current_jti` is the only refresh token that may be used; `previous_jti`, retired at `rotated_at`, may be
    presented again within the grace window (a concurrent refresh) and gets the same successor. Any older refresh
    token of the family is a reuse: the family is revoked (`revoked_at`), which ends its access tokens too.
    """

    __tablename__ = "token_families"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_jti: Mapped[str] = mapped_column(sa.String(64))
    previous_jti: Mapped[str | None] = mapped_column(sa.String(64))
    rotated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[object | None] = mapped_column(UTCDateTime)
