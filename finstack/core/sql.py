"""SQL expressions that read the same on SQLite and PostgreSQL but compile differently on each."""

import json
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from finstack.core.time import as_utc
from finstack.extensions import db


class hours_between(FunctionElement):  # noqa: N801 - used like a SQL function: hours_between(end, start)
    """`end - start` in hours, as a floating-point number (NULL when either side is NULL)."""

    type = sa.Float()
    name = "hours_between"
    inherit_cache = True


def _sides(element, compiler, **kw):
    end, start = element.clauses
    return compiler.process(end, **kw), compiler.process(start, **kw)


@compiles(hours_between)
def _hours_between_sqlite(element, compiler, **kw):
    # SQLite keeps datetimes as ISO text; julianday() reads them as fractional days.
    end, start = _sides(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


@compiles(hours_between, "postgresql")
def _hours_between_postgresql(element, compiler, **kw):
    end, start = _sides(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({end}) - ({start})) / 3600.0)"


class utc_day(FunctionElement):  # noqa: N801 - used like a SQL function: utc_day(moment)
    """The UTC calendar day of a datetime as 'YYYY-MM-DD' text (the `due_day` keys of finstack.tasks.counts; the
    triggers of migration 0027 compute the same text)."""

    type = sa.String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element, compiler, **kw):
    # SQLite keeps a datetime as naive UTC ISO text.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def iso_datetime(moment):
    """PostgreSQL: a timestamptz as the text `AwareDateTime` dumps, `datetime.isoformat()` in UTC: microseconds only
    when there are any, then `+00:00` (`to_json` would trim the microseconds' trailing zeros); NULL stays NULL."""
    utc = sa.func.timezone("UTC", moment)
    microseconds = sa.cast(sa.extract("microseconds", moment), sa.BigInteger) % 1_000_000
    fraction = sa.case((microseconds == 0, ""), else_=sa.func.to_char(utc, ".US", type_=sa.Text))
    return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS', type_=sa.Text) + fraction + "+00:00"


def json_object(pairs):
    """PostgreSQL: `json_build_object` of `(key, SQL value)` pairs, in their order (each key a string literal)."""
    return sa.func.json_build_object(
        *[part for key, value in pairs for part in (sa.literal_column("'" + key.replace("'", "''") + "'"), value)]
    )


def _array_element(value):
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def in_values(column, values):
    """`column IN (values)`, `values` a list or a one-column SELECT (such as `core.locks.claim`'s batch).

    On PostgreSQL a list is one parameter, the array literal's text cast to an array (`column = ANY(CAST(:values AS
    uuid[]))`): an expanding IN renders and adapts one parameter per value on every execution, and a list parameter
    is still adapted value by value (and sent as `ARRAY[…]` for the server to parse), which for a batch of 10,000 ids
    costs more than the statement's own work in the database. Strings are quoted as array elements (any text: file
    names from a folder), other values printed as they are (UUIDs, numbers). A SELECT becomes `column =
    ANY(ARRAY(SELECT …))`: the planner, not knowing how many values that array holds, probes `column`'s index for
    each (an `IN (SELECT …)` over a temporary table it has no statistics for, or a literal of 10,000 values, may have
    it scan the whole table instead)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    if isinstance(values, sa.Select):
        return column == sa.any_(sa.func.array(values.scalar_subquery(), type_=postgresql.ARRAY(column.type)))
    literal = "{" + ",".join(map(_array_element, values)) + "}"
    return column == sa.any_(sa.cast(sa.bindparam(None, literal, type_=sa.Text), postgresql.ARRAY(column.type)))


def count_where(condition):
    """COUNT of the rows where `condition` holds (NULL is not counted)."""
    return sa.func.count(sa.case((condition, 1)))


def medians(durations, name="medians"):
    """Per `durations.c.key`, the median of `durations.c.hours`: a subquery of (key, median_hours), called `name`
    (two medians in one statement need two names).

    One query on both databases (SQLite has no percentile function): rank each key's values, then average the middle
    one (odd count) or the two middle ones (even count): ranks (n + 1) div 2 and (n + 2) div 2.
    """
    ranked = sa.select(
        durations.c.key,
        durations.c.hours,
        sa.func.row_number().over(partition_by=durations.c.key, order_by=durations.c.hours).label("rank"),
        sa.func.count().over(partition_by=durations.c.key).label("n"),
    ).subquery(f"{name}_ranked")
    return (
        sa.select(ranked.c.key, sa.func.avg(ranked.c.hours).label("median_hours"))
        .where(ranked.c.rank.between((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2))
        .group_by(ranked.c.key)
        .subquery(name)
    )


def _json_value(value):
    """What `insert_rows` sends for a value JSON has no type for: UUIDs as text, datetimes in UTC as `UTCDateTime`
    binds them."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def insert_rows(table, rows):
    """INSERT `rows` (dicts with the same keys, values as the columns take them) into `table` in the session.

    On PostgreSQL one statement reads every row from a single JSON parameter (`json_populate_recordset`): for the
    thousands of rows a sweep writes, a fraction of the client-side quoting and statement text of a multi-row VALUES
    (the rows go through `json.dumps`, so a JSON column's value is stored as it would be). Elsewhere, executemany.
    """
    if not rows:
        return
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(sa.insert(table), rows)
        return
    columns = ", ".join(f'"{name}"' for name in rows[0])
    db.session.execute(
        sa.text(
            f'INSERT INTO "{table.name}" ({columns}) '
            f'SELECT {columns} FROM json_populate_recordset(NULL::"{table.name}", :rows)'
        ),
        {"rows": json.dumps(rows, default=_json_value)},
    )
