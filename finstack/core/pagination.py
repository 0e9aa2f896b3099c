"""SQL pagination by page number or by keyset cursor, with a total that never counts more than it must.

The total is a bounded count: `SELECT count(*) FROM (... LIMIT PAGINATION_EXACT_LIMIT + 1)`, a column of the page's
own statement (a statement of its own only for a page with no rows). At or under the limit it is exact
(`total_exact: true`); above it PostgreSQL's planner estimate of the filtered statement stands in (at least the
limit + 1), SQLite's total is the limit, and `total_exact` is false. On PostgreSQL a list the planner expects to
hold at least PAGINATION_TRUSTED_ESTIMATE rows is counted only up to a hundredth of the limit; a list may also bring its
own total (the task list reads maintained counts when its filters allow).

The keyset cursor is derived from the statement's own ORDER BY, so every list that pages through `paginate` takes
`?cursor=` without code of its own: the cursor holds the sort key values of a page's last row (the ORDER BY must end
in a unique key, as every list's does with its id) and the next page is `WHERE (keys) after (values) ... LIMIT n`,
whose cost does not grow with depth. A cursor is tied to its sort: one from another sort or list is refused (400).
"""

import base64
import binascii
import hashlib
import json
import math
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ClauseElement, Label, UnaryExpression, _label_reference
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.operators import asc_op, desc_op, nulls_first_op, nulls_last_op
from sqlalchemy.sql.visitors import InternalTraversal

from finstack.errors import ApiError
from finstack.extensions import db

KEY_PREFIX = "_page_key_"
COUNT_LABEL = "_page_counted"
DIRECTIONS = (asc_op, desc_op, nulls_first_op, nulls_last_op)
MEMO_SIZE = 256


class StatementMemo(dict):
    """Statements kept by a key that names them (the same key, the same SQL), at most MEMO_SIZE (emptied when full):
    a statement reused keeps its SQLAlchemy cache key, which is computed on its first execution only."""

    def remember(self, key, value):
        if len(self) >= MEMO_SIZE:
            self.clear()
        self[key] = value
        return value


# Page statements by `paginate`'s `memo_key`, page and size.
_PAGES = StatementMemo()


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <statement>` with the statement's bound parameters (PostgreSQL); compiled once per
    statement shape (its cache key is the statement's), not on every request."""

    inherit_cache = True
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]

    def __init__(self, statement):
        self.statement = statement

    @property
    def _all_selected_columns(self):
        """Its one result column, which a cached compilation's result metadata is matched against."""
        return [sa.column("QUERY PLAN")]


@compiles(_Explain, "postgresql")
def _compile_explain(element, compiler, **kw):
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


class _Key:
    """One ORDER BY term: its expression, direction and where NULLs sort."""

    def __init__(self, clause, dialect_name):
        self.descending = False
        nulls = None
        while True:  # peel directions, NULLS placement and label references, in whatever nesting they come
            if isinstance(clause, _label_reference | Label):
                clause = clause.element
            elif isinstance(clause, UnaryExpression) and clause.modifier in DIRECTIONS:
                if clause.modifier is desc_op:
                    self.descending = True
                elif clause.modifier in (nulls_first_op, nulls_last_op):
                    nulls = "first" if clause.modifier is nulls_first_op else "last"
                clause = clause.element
            else:
                break
        self.expression = clause
        if nulls is None:  # PostgreSQL sorts NULLs as the largest values, SQLite as the smallest
            nulls_largest = dialect_name == "postgresql"
            nulls = "last" if nulls_largest != self.descending else "first"
        self.nulls_last = nulls == "last"
        self.nullable = getattr(clause, "nullable", True) is not False

    def after(self, value):
        """Rows that sort strictly after `value` on this key."""
        if value is None:
            return sa.false() if self.nulls_last else self.expression.is_not(None)
        beyond = self.expression < value if self.descending else self.expression > value
        return sa.or_(beyond, self.expression.is_(None)) if self.nullable and self.nulls_last else beyond

    def equal(self, value):
        return self.expression.is_(None) if value is None else self.expression == value

    @cached_property
    def signature(self):
        """The key as a cursor's sort signature reads it: its SQL text is rendered once per key (a memoized page
        statement's keys serve every request for that page)."""
        return f"{self.expression}:{self.descending}"


def _encode_value(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"f": repr(value)}
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if hasattr(value, "value"):  # an Enum member
        return _encode_value(value.value)
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


_DECODERS = {"f": float, "dt": datetime.fromisoformat, "d": date.fromisoformat, "u": uuid.UUID, "n": Decimal}


def _decode_value(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag in _DECODERS and isinstance(text, str):
            return _DECODERS[tag](text)
    raise ValueError("not a cursor value")


def _sort_signature(keys):
    """Ties a cursor to the sort it was made for (same expressions, same directions)."""
    text = "|".join(key.signature for key in keys)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_cursor(keys, values):
    payload = {"s": _sort_signature(keys), "k": [_encode_value(value) for value in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(keys, cursor):
    """The sort key values in `cursor`; 400 unless it is a cursor made for this very sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("s") != _sort_signature(keys):
            raise ValueError("another sort")
        values = payload.get("k")
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong arity")
        return [_decode_value(value) for value in values]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, "Validation failed", {"cursor": ["Not a valid cursor for this list and sort."]}) from exc


def _after_clause(keys, values):
    """Rows that sort after the cursor row: a row-value comparison when every key runs one way over NOT NULL columns
    (an index range scan), else the expanded OR of "equal on the first i keys, after on key i+1"."""
    if len({key.descending for key in keys}) == 1 and not any(key.nullable for key in keys) and None not in values:
        left = sa.tuple_(*(key.expression for key in keys))
        right = sa.tuple_(*values)
        return left < right if keys[0].descending else left > right
    alternatives = []
    for index, key in enumerate(keys):
        equal = [keys[i].equal(values[i]) for i in range(index)]
        alternatives.append(sa.and_(*equal, key.after(values[index])))
    return sa.or_(*alternatives)


def _estimate(source):
    """PostgreSQL's planner estimate of the rows `source` returns (one EXPLAIN, no execution)."""
    plan = db.session.execute(_Explain(source)).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _bounded_count(source, limit):
    """`SELECT count(*) FROM (source LIMIT limit + 1)`: counts no further than one row past the limit."""
    return sa.select(sa.func.count()).select_from(source.limit(limit + 1).subquery())


def _total(counted, limit, estimate):
    """`(total, exact)` from a bounded count: exact up to the limit; above it the planner's `estimate`
    (PostgreSQL), else the limit."""
    if counted <= limit:
        return counted, True
    if estimate is not None:
        return max(estimate, limit + 1), False
    return limit, False


def _count(statement, count_statement, exact_total, dialect_name):
    """`(count, count_limit, estimate)`: the SELECT of the page's total, the limit a bounded count stops at and the
    planner's estimate (PostgreSQL, when the caller brings no exact total)."""
    limit = current_app.config["PAGINATION_EXACT_LIMIT"]
    count_source = (count_statement if count_statement is not None else statement).order_by(None)
    estimate = None
    count, count_limit = exact_total, limit
    if count is None and dialect_name == "postgresql":
        # The planner first: a list it expects to be far above the exact limit is counted only up to a hundredth of
        # the limit (finding its first limit + 1 rows costs 50 to 300 ms at 1M tasks, and even a tenth of them
        # twice what the whole of a 10k table's match costs, for a total the client then reads as an estimate); that
        # short count still catches a planner misled by stale statistics (a table emptied since its last ANALYZE),
        # whose small set it counts exactly.
        estimate = _estimate(count_source)
        if estimate >= max(current_app.config["PAGINATION_TRUSTED_ESTIMATE"], limit + 1):
            count_limit = max(1, limit // 100)
    if count is None:
        count = _bounded_count(count_source, count_limit)
    return count, count_limit, estimate


def _page_statement(statement, keys, count, cursor, page, per_page):
    """`(labels, statement)`: `statement` with its sort keys (named by `labels`) and the `count` as columns, after
    the `cursor` or at the page's offset, limited to one row more than the page."""
    labels = [f"{KEY_PREFIX}{index}" for index in range(len(keys))]
    columns = [key.expression.label(label) for key, label in zip(keys, labels, strict=True)]
    # The count rides along as one more column (an uncorrelated scalar subquery, computed once): the page and its
    # total in one statement and one snapshot; only a page with no rows counts on its own.
    columns.append(count.correlate(None).scalar_subquery().label(COUNT_LABEL))
    page_statement = statement.add_columns(*columns)
    if cursor is not None:
        values = decode_cursor(keys, cursor)
        after = _after_clause(keys, values)
        page_statement = page_statement.having(after) if statement._group_by_clauses else page_statement.where(after)
    else:
        page_statement = page_statement.offset((page - 1) * per_page)
    return labels, page_statement.limit(per_page + 1)


def _joined(page_statement, keys, labels, join):
    """The rows `join` selects for the page, in the page's order: the page (ids, sort keys and count, filtered,
    sorted and limited on its own table) as a subquery, the rest of each row looked up for its rows alone."""
    page = page_statement.subquery("page")
    order = []
    for key, label in zip(keys, labels, strict=True):
        term = page.c[label].desc() if key.descending else page.c[label].asc()
        order.append(term.nulls_last() if key.nulls_last else term.nulls_first())
    return join(page).add_columns(*(page.c[label] for label in labels), page.c[COUNT_LABEL]).order_by(*order)


def paginate(
    statement,
    *,
    page,
    per_page,
    cursor=None,
    count_statement=None,
    exact_total=None,
    rows=False,
    whole_rows=False,
    rows_from=None,
    memo_key=None,
):
    """Run `statement` for one page and return the list envelope.

    `cursor` (from a previous page's `next_cursor`) replaces `page`: keyset paging on the statement's ORDER BY.
    `count_statement` may be given when counting can skip joins or eager loads the page needs; `exact_total`, a
    SELECT of one number, when the caller knows the exact total without counting (maintained counts). Items: the
    first column's values; with `rows=True` the selected columns as mappings, with `whole_rows=True` the result
    rows themselves (attribute access; the sort keys follow the selected columns). `rows_from`, a pair
    `(join, build)`: the statement pages ids on one table, and `join(page)` selects the columns the response needs
    joined to the page (a subquery whose first column is the id); the page is read in that one statement, in the
    page's order, through the session's connection (Core execution, without the ORM's result machinery), and
    `build(rows)` turns the page's rows into the items.
    `memo_key`: a hashable naming `statement`, `count_statement` and `exact_total` (the same key, the same SQL, with
    nothing in it that changes with time): a page by number with an `exact_total` then reuses the page statement
    built for the same key, page and size (see `StatementMemo`).
    """
    dialect_name = db.session.get_bind().dialect.name
    if memo_key is not None and cursor is None and exact_total is not None:
        memo_key = (memo_key, dialect_name, page, per_page)
        built = _PAGES.get(memo_key)
    else:
        memo_key = built = None
    if built is not None:
        keys, labels, count, page_statement = built
        count_limit = estimate = None  # an exact total: neither is read
    else:
        keys = [_Key(clause, dialect_name) for clause in statement._order_by_clauses]
        count, count_limit, estimate = _count(statement, count_statement, exact_total, dialect_name)
        labels, page_statement = _page_statement(statement, keys, count, cursor, page, per_page)
        if rows_from is not None:
            page_statement = _joined(page_statement, keys, labels, rows_from[0])
        if memo_key is not None:
            _PAGES.remember(memo_key, (keys, labels, count, page_statement))
    execute = db.session.execute if rows_from is None else db.session.connection().execute
    result = execute(page_statement).all()
    more = len(result) > per_page
    counted = getattr(result[0], COUNT_LABEL) if result else db.session.scalar(count)
    if exact_total is not None:
        total, exact = counted, True
    else:
        total, exact = _total(counted, count_limit, estimate)
        if not exact and not more and cursor is None and result:
            # Estimated, but this is the last page by number: the rows before it and its own are the total.
            total, exact = (page - 1) * per_page + len(result), True
    result = result[:per_page]
    if rows:
        hidden = {*labels, COUNT_LABEL}
        items = [{name: value for name, value in row._mapping.items() if name not in hidden} for row in result]
    elif whole_rows:
        items = result
    else:
        items = [row[0] for row in result] if rows_from is None else rows_from[1](result)
    next_cursor = encode_cursor(keys, [getattr(result[-1], label) for label in labels]) if more and keys else None
    return {
        "items": items,
        "pagination": {
            "page": None if cursor is not None else page,
            "per_page": per_page,
            "total": total,
            "total_exact": exact,
            "pages": math.ceil(total / per_page) if total else 0,
            "next_cursor": next_cursor,
        },
    }
