"""The statements a request really issues, and their PostgreSQL plans: the harness of the index tests."""

import re
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def issued_statements(engine, wanted=lambda statement: True):
    """Collect `(statement, parameters)` of every statement run on `engine` inside the block that `wanted` accepts
    (the pagination's own `EXPLAIN` for an estimate is left out: it is not a query over the data)."""
    issued = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("EXPLAIN") and wanted(statement):
            issued.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield issued
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def explain(engine, statement, parameters):
    """PostgreSQL's plan of the statement with its parameters, as text."""
    with engine.connect() as connection:
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))


def seq_scans(plan, table):
    """The plan's lines that read all of `table` (its aliases included)."""
    return [line for line in plan.splitlines() if re.search(rf"Seq Scan on {table}\b", line)]


def explain_tree(engine, statement, parameters):
    """PostgreSQL's plan of the statement with its parameters, as the tree of `EXPLAIN (FORMAT JSON)`."""
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
    return plan[0]["Plan"]


# Plan nodes that pass rows on as they get them from their outer (first) input: a Limit above them stops that input.
STREAMING = {"Hash Join", "Nested Loop", "Subquery Scan", "Result"}


def full_scans(node, table, stops_early=False):
    """The plan nodes that read all of `table`: its sequential scans, except one that a Limit stops early (the Limit
    expects fewer rows than its input gives, and only streaming nodes lie between them, the scan on their outer
    side), whose cost is then set by the limit and the filter's selectivity, not by the table's size."""
    found = []
    if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == table and not stops_early:
        found.append(node)
    for child in node.get("Plans", ()):
        if node["Node Type"] == "Limit":
            child_stops_early = node["Plan Rows"] < child["Plan Rows"]
        else:
            streams = node["Node Type"] in STREAMING and child["Parent Relationship"] == "Outer"
            child_stops_early = stops_early and streams
        found += full_scans(child, table, child_stops_early)
    return found
