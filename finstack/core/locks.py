"""Row locks that hold on both databases, for read-check-write rules (a team's last manager, a group's members).

PostgreSQL locks the rows with `SELECT … FOR UPDATE`. SQLite has no row locks and ignores that clause, and
pysqlite opens its transaction only at the first write, so a check read before it sees no lock at all. There, a
write that changes nothing (`UPDATE … SET id = id`) opens the transaction and takes the database's write lock at
once: a second writer waits for the commit (busy timeout) and its check then reads the committed state.
"""

import sqlalchemy as sa

from finstack.extensions import db


def lock_rows(model, ids):
    """Lock the rows of `model` whose primary key is in `ids` until the transaction ends."""
    ids = list(ids)
    if not ids:
        return
    table = model.__table__
    key = table.c.id
    if db.session.get_bind().dialect.name == "sqlite":
        # Naming every column that has an `onupdate` keeps the no-op a no-op (no `updated_at` bump).
        unchanged = {column.name: column for column in table.columns if column.onupdate is not None}
        db.session.execute(sa.update(table).where(key.in_(ids)).values({"id": key, **unchanged}))
    else:
        db.session.execute(sa.select(key).where(key.in_(ids)).with_for_update())


def bounded_claim(candidates, name):
    """`candidates` (a one-column `SELECT … LIMIT n FOR UPDATE SKIP LOCKED`) as something to put in `IN (…)`.

    On PostgreSQL a MATERIALIZED CTE: as a plain subquery the planner may run it again for each row of the UPDATE,
    each run skipping the rows already locked and taking the next ones, so LIMIT bounds nothing. Elsewhere the plain
    subquery: pysqlite opens its transaction only before a statement that starts with INSERT/UPDATE/DELETE, so a
    `WITH … UPDATE` would run outside it and commit on its own, whatever the caller rolls back.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return candidates
    materialized = candidates.cte(name).prefix_with("MATERIALIZED")
    return sa.select(*materialized.c)
