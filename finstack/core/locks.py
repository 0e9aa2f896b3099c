"""Row locks that hold on both databases, for read-check-write rules (a team's last manager, a group's members).

PostgreSQL locks the rows with `SELECT … FOR UPDATE`. SQLite has no row locks and ignores that clause, and
pysqlite opens its transaction only at the first write, so a check read before it sees no lock at all. There, a
write that changes nothing (`UPDATE … SET id = id`) opens the transaction and takes the database's write lock at
once: a second writer waits for the commit (busy timeout) and its check then reads the committed state.
"""

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Claim:
    """A batch of rows locked for this transaction: `ids`, what to pass to `core.sql.in_values`; `count`, how many."""

    ids: object
    count: int


def claim(candidates, name):
    """Lock the rows `candidates` selects (one column of ids, `LIMIT n FOR UPDATE SKIP LOCKED`) until the transaction
    ends; returns them as a `Claim` for the statements that follow to name with `in_values`.

    On PostgreSQL the ids go into a temporary table called `name`, dropped at commit, and `Claim.ids` is a SELECT of
    them: a batch of 10,000 ids never travels to Python and back for each statement (printing, sending and parsing
    it cost more than some of the statements' own work). Elsewhere (SQLite: no row locks) the ids, as a list.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        ids = db.session.scalars(candidates).all()
        return Claim(ids, len(ids))
    (column,) = candidates.selected_columns
    table = sa.Table(
        name, sa.MetaData(), sa.Column("id", column.type), prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )
    connection = db.session.connection()
    table.create(connection)
    count = connection.execute(sa.insert(table).from_select(["id"], candidates)).rowcount
    return Claim(sa.select(table.c.id), count)
