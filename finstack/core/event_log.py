"""The per-user event log: every live event a user is addressed to, recorded in the writer's transaction with a
per-user sequence number, so a client that was away can replay what it missed (`GET /api/events`, or `last_seq` at
Socket.IO connect).

Who a room's event is recorded for: `user:<id>` → that user; `conversation:<id>` → the members a domain's resolver
names (direct and group chats register theirs: `register_room_members`). Rooms without a resolver (`task:<id>`,
`project:<id>`, `department:<id>`, ticket-thread rooms) are ad hoc: their events are recorded only for the users
they are also addressed to by user room, and still go live to the room for the other sockets in it.

Sequence numbers come from a counter row per user, incremented by one upsert (`INSERT … ON CONFLICT DO UPDATE …
RETURNING`) under a row lock (taken in user-id order on PostgreSQL, so two writers never deadlock; SQLite has one
writer at a time): distinct and strictly increasing per user, in commit order of the writers that touch the same user.
"""

import functools
import uuid
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from finstack.core.db_types import UTCDateTime
from finstack.core.sql import insert_rows
from finstack.core.time import utcnow
from finstack.extensions import db

USER_PREFIX = "user:"
CHUNK = 500
INSERT_CHUNK = 5_000

_room_members = {}  # room prefix -> fn(list of ids as strings) -> SELECT (room id as string, user id)


class UserEventCounter(db.Model):
    """The last sequence number given to a user's events."""

    __tablename__ = "user_event_counters"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


class UserEvent(db.Model):
    __tablename__ = "user_events"
    __table_args__ = (
        # Retention pruning deletes by age.
        sa.Index("ix_user_events_created_at", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    event: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(sa.JSON, nullable=False)
    # What the event is about, for the access re-check at replay: `conversation:<id>`, `project:<id>`, `task:<id>`.
    scope: Mapped[str | None] = mapped_column(sa.String(80))
    created_at: Mapped[object] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


def register_room_members(prefix, members_query):
    """`members_query(ids)`: a SELECT of `(id, user_id)` naming the users a `<prefix><id>` room's events are
    recorded for."""
    _room_members[prefix] = members_query


def recipients(rooms):
    """`(user ids, shared rooms)` of `rooms`: the users the event is recorded for, and the rooms to emit to for the
    other sockets in them."""
    if len(rooms) == 1 and rooms[0].startswith(USER_PREFIX):  # one user's room (a notification): the common case
        return {_user_id(rooms[0][len(USER_PREFIX) :])}, []
    users, adhoc, resolvable = set(), [], defaultdict(list)
    for room in rooms:
        prefix, _, key = room.partition(":")
        prefix += ":"
        if prefix == USER_PREFIX:
            users.add(_user_id(key))
        else:
            # A resolvable room still gets the live emit: its sockets of recorded users are skipped then, and a
            # room the resolver names nobody for (a ticket thread's `conversation:<id>`) keeps its readers.
            adhoc.append(room)
            if prefix in _room_members:
                resolvable[prefix].append(key)
    for prefix, keys in resolvable.items():
        for start in range(0, len(keys), CHUNK):
            query = _room_members[prefix](keys[start : start + CHUNK])
            users.update(user_id for _, user_id in db.session.execute(query))
    return users, adhoc


@functools.lru_cache(maxsize=8192)
def _user_id(key):
    """A user room's id, parsed once: a sweep addresses thousands of events to the same few hundred users."""
    return uuid.UUID(key)


def scope_of(rooms):
    """The first room that is not a user room: what the event is about, for the access re-check at replay."""
    for room in rooms:
        if not room.startswith(USER_PREFIX):
            return room
    return None


def record(messages):
    """Record `(event, payload, user ids, scope)` messages in the current transaction; returns, per message, a list
    of `(user_id, seq)`. One statement per CHUNK of users, then the rows' inserts, whatever the number of
    messages."""
    counts = defaultdict(int)
    for _, _, user_ids, _ in messages:
        for user_id in user_ids:
            counts[user_id] += 1
    if not counts:
        return [[] for _ in messages]
    last = {}
    users = sorted(counts)
    for start in range(0, len(users), CHUNK):
        last.update(_allocate({user_id: counts[user_id] for user_id in users[start : start + CHUNK]}))
    next_seq = {user_id: last[user_id] - counts[user_id] + 1 for user_id in users}
    now = utcnow()
    rows, delivered = [], []
    for event, payload, user_ids, scope in messages:
        seqs = []
        for user_id in sorted(user_ids):
            seq = next_seq[user_id]
            next_seq[user_id] += 1
            rows.append(
                {"user_id": user_id, "seq": seq, "event": event, "payload": payload, "scope": scope, "created_at": now}
            )
            seqs.append((user_id, seq))
        delivered.append(seqs)
    for start in range(0, len(rows), INSERT_CHUNK):
        insert_rows(UserEvent.__table__, rows[start : start + INSERT_CHUNK])
    return delivered


def _allocate(counts):
    """Add `counts[user_id]` to each user's counter (created at 0 when missing); `{user_id: new last_seq}`.

    One upsert, its rows in user-id order: PostgreSQL locks each counter as it reaches it, so writers touching the
    same users lock them in the same order."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = UserEventCounter.__table__
    statement = insert(table).values([{"user_id": user_id, "last_seq": counts[user_id]} for user_id in sorted(counts)])
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"], set_={"last_seq": table.c.last_seq + statement.excluded.last_seq}
    ).returning(table.c.user_id, table.c.last_seq)
    return dict(db.session.execute(statement).tuples().all())


def record_from(event, source, payload, now, *, scope=None, order_by=None):
    """PostgreSQL: the `record` of one `event` per row of `source` (a CTE with a `user_id` column) to that user, its
    `payload` (and `scope`, else NULL) a SQL expression over `source`, as CTEs of one statement: the counters move by
    one upsert in user-id order (the lock order of `_allocate`) and the rows go in numbered below them, each user's
    in `order_by`'s order (else any). Returns the INSERT … RETURNING (user_id, seq, payload) CTE, to be selected from
    in the same statement."""
    counts = sa.select(source.c.user_id, sa.func.count().label("n")).group_by(source.c.user_id).cte(f"{event}_counts")
    table = UserEventCounter.__table__
    upsert = pg_insert(table).from_select(
        ["user_id", "last_seq"], sa.select(counts.c.user_id, counts.c.n).order_by(counts.c.user_id)
    )
    counters = (
        upsert.on_conflict_do_update(
            index_elements=["user_id"], set_={"last_seq": table.c.last_seq + upsert.excluded.last_seq}
        )
        .returning(table.c.user_id, table.c.last_seq)
        .cte(f"{event}_counters")
    )
    number = sa.func.row_number().over(partition_by=source.c.user_id, order_by=order_by)
    rows = (
        sa.select(
            source.c.user_id,
            (counters.c.last_seq - counts.c.n + number).label("seq"),
            sa.literal(event, sa.String),
            payload,
            sa.null() if scope is None else scope,
            sa.literal(now, UTCDateTime),
        )
        .join_from(source, counts, counts.c.user_id == source.c.user_id)
        .join(counters, counters.c.user_id == source.c.user_id)
    )
    events = UserEvent.__table__
    return (
        sa.insert(events)
        .from_select(["user_id", "seq", "event", "payload", "scope", "created_at"], rows)
        .returning(events.c.user_id, events.c.seq, events.c.payload)
        .cte(f"{event}_events")
    )
