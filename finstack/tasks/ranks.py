"""Board order: each project task has a `rank`, a key whose byte order is the card's place in its column.

Keys are base-62 digits (0-9, A-Z, a-z: ASCII order) read as a fraction (0.k1k2k3…), never ending in "0", so there is
always room below and above any key and between any two. A move writes one row: a key between its new neighbours
(`between`). Keys inserted again and again at one spot grow by about one digit per five inserts; when a new key would
be longer than MAX_LENGTH, the column is rebalanced first: every key of the column is rewritten, evenly spaced, in
two UPDATE statements (`rebalance`), under the column's lock.

Every write that gives a task a place takes the column's lock first (`lock_column`: a transaction-scoped PostgreSQL
advisory lock; SQLite serialises writers anyway), so two writers never pick the same key; the unique index on
(project_id, status, rank) is the backstop. Keys are unique among all the column's tasks, trashed ones included, so
a restored task finds its place free.
"""

import functools
import hashlib
from collections import defaultdict

import sqlalchemy as sa

from finstack.core.locks import lock_rows
from finstack.extensions import db
from finstack.projects.models import Project
from finstack.tasks.models import Task

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
MAX_LENGTH = 32  # a longer key rebalances the column first
SPACING = BASE**2  # after a rebalance, about a dozen inserts at one spot fit before keys grow past the new width
TEMPORARY_PREFIX = "~"  # sorts after every digit, and no key holds it: the rebalance's first pass cannot collide


def _digit(key, position):
    return DIGITS.index(key[position])


def between(low, high):
    """A key strictly between `low` and `high` (None: no bound on that side).

    Between two keys: their midpoint, as short as the gap allows. Above the top card or below the bottom one: the
    next key one step away, so cards added again and again at the top (or bottom) take one digit per ~60 of them.
    """
    if low is None and high is None:
        return DIGITS[BASE // 2]
    if low is None:
        return _below(high)
    if high is None:
        return _above(low)
    if not low < high:
        raise ValueError(f"{low!r} is not below {high!r}")
    return _midpoint(low, high)


def _below(high):
    digit = _digit(high, 0)
    if digit and len(high) > 1:
        return high[0]  # a proper prefix sorts first
    if digit > 1:
        return DIGITS[digit - 1]
    if digit == 1:
        return DIGITS[0] + DIGITS[-1]
    return DIGITS[0] + _below(high[1:])


def _above(low):
    if not low:
        return DIGITS[1]
    digit = _digit(low, 0)
    if digit < BASE - 1:
        return DIGITS[digit + 1]
    return DIGITS[-1] + _above(low[1:])


def _midpoint(low, high):
    """Midpoint of the fractions `low` ("" = 0) and `high` (None = 1); neither ends in "0"."""
    if high is not None:
        shared = 0
        while (low[shared] if shared < len(low) else DIGITS[0]) == high[shared]:
            shared += 1
        if shared:
            return high[:shared] + _midpoint(low[shared:], high[shared:])
    low_digit = _digit(low, 0) if low else 0
    high_digit = _digit(high, 0) if high is not None else BASE
    if high_digit - low_digit > 1:
        return DIGITS[(low_digit + high_digit + 1) // 2]
    if high is not None and len(high) > 1:
        return high[0]
    return DIGITS[low_digit] + _midpoint(low[1:], None)


def evenly_spaced(count):
    """`count` ascending keys of one width spread over the whole range: what a rebalance writes (`key_sql` is the
    same arithmetic in SQL)."""
    width, step = _layout(count)
    return [_encode(number * step, width).rstrip(DIGITS[0]) for number in range(1, count + 1)]


def _layout(count):
    width = 1
    while BASE**width < (count + 1) * SPACING:
        width += 1
    return width, BASE**width // (count + 1)


def _encode(value, width):
    return "".join(DIGITS[value // BASE ** (width - 1 - place) % BASE] for place in range(width))


def key_sql(number, count):
    """SQL for the key `evenly_spaced(count)` gives the `number`-th card (an integer SQL expression from 1)."""
    width, step = _layout(count)
    value = number * _integer(step)
    digits = [  # substr(text, integer, integer): PostgreSQL has no bigint version
        sa.func.substr(
            DIGITS, sa.cast(value // _integer(BASE ** (width - 1 - place)) % BASE + 1, sa.Integer), 1, type_=sa.String
        )
        for place in range(width)
    ]
    return sa.func.rtrim(functools.reduce(_concat, digits), DIGITS[0], type_=sa.String)


def _integer(value):
    """An integer constant written into the SQL: PostgreSQL then divides bigints as integers."""
    return sa.literal_column(str(value), sa.BigInteger)


def _concat(left, right):
    return left.op("||", return_type=sa.String)(right)


# --- The database side ---------------------------------------------------------------------------------------


def _lock_key(project_id, status):
    digest = hashlib.blake2b(f"{project_id}:{status}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_column(project_id, status):
    """Hold the column's lock until the transaction ends, so the neighbours read next are the committed ones.

    PostgreSQL: an advisory lock per column. SQLite: the project's row (`lock_rows`), which takes the database's
    write lock before anything is read."""
    with db.session.no_autoflush:
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(project_id, status))))
        else:
            lock_rows(Project, [project_id])


def column(project_id, status):
    """SQL: the tasks of one board column (trashed ones included: their keys stay taken)."""
    return sa.and_(Task.project_id == project_id, Task.status == status)


def fitted(project_id, status, bounds):
    """A key between the two keys `bounds()` reads; if it would be too long, the column is rebalanced and `bounds()`
    read again. Call under the column's lock, before the task's own new status or rank is set (no autoflush here)."""
    with db.session.no_autoflush:
        key = between(*bounds())
        if len(key) > MAX_LENGTH:
            rebalance(project_id, status)
            key = between(*bounds())
    return key


def _first(project_id, status, exclude_id=None):
    cards = column(project_id, status)
    if exclude_id is not None:
        cards = sa.and_(cards, Task.id != exclude_id)
    return db.session.scalar(sa.select(sa.func.min(Task.rank)).where(cards))


def top_rank(project_id, status, exclude_id=None):
    """Lock the column and return a key above every card in it but `exclude_id`; None for a task in no project."""
    if project_id is None:
        return None
    lock_column(project_id, status)
    return fitted(project_id, status, lambda: (None, _first(project_id, status, exclude_id)))


def top_ranks_for(tasks, status):
    """`{task id: key}` for the `tasks` that `status` puts into another column of their project: the top of it, in
    the order given. Locks those columns (in one order, so two bulk changes cannot deadlock)."""
    moving = defaultdict(list)
    for task in tasks:
        if task.project_id is not None and task.status != status:
            moving[task.project_id].append(task.id)
    keys = {}
    for project_id in sorted(moving, key=str):
        lock_column(project_id, status)
        with db.session.no_autoflush:
            high = _first(project_id, status)
        column_keys = []
        for _ in moving[project_id]:
            high = between(None, high)
            column_keys.append(high)
        keys.update(zip(moving[project_id], reversed(column_keys), strict=True))
    return keys


def rebalance(project_id, status):
    """Rewrite every key of the column, evenly spaced, keeping the order: two set-based UPDATEs (the first moves the
    keys out of the way under a prefix no key holds, so the unique index never sees two equal keys)."""
    cards = column(project_id, status)
    count = db.session.scalar(sa.select(sa.func.count()).where(cards))
    numbered = (
        sa.select(Task.id, sa.func.row_number().over(order_by=(Task.rank, Task.id)).label("number"))
        .where(cards)
        .subquery()
    )
    db.session.execute(
        sa.update(Task)
        .where(Task.id == numbered.c.id)
        .values(
            rank=_concat(sa.literal(TEMPORARY_PREFIX), key_sql(numbered.c.number, count)),
            updated_at=Task.updated_at,  # a new key is no change to the task
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Task)
        .where(cards)
        .values(rank=sa.func.substr(Task.rank, len(TEMPORARY_PREFIX) + 1), updated_at=Task.updated_at)
        .execution_options(synchronize_session=False)
    )
    for instance in db.session.identity_map.values():
        if isinstance(instance, Task):
            db.session.expire(instance, ["rank"])
