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
    """PostgreSQL's plan of the statement with its parameters, run (`EXPLAIN (ANALYZE, FORMAT JSON)`): the tree of
    nodes with the planner's estimates and what each node really did (read-only statements only)."""
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).scalar()
    return plan[0]["Plan"]


# Plan nodes that pass rows on as they get them from their outer (first) input: a Limit above them stops that input.
STREAMING = {"Hash Join", "Nested Loop", "Subquery Scan", "Result"}


def full_scans(node, table, table_rows, under_limit=False):
    """The plan nodes that read all of `table` (`table_rows` rows): its sequential scans, except one that a Limit
    stopped early: only streaming nodes lie between the Limit and the scan (on their outer side), and the scan really
    read fewer rows than the table holds. Its cost is then set by the limit and the filter's selectivity, not by the
    table's size; the same scan on a filter that matches fewer rows than the limit reads everything, and fails."""
    found = []
    if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == table:
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        if not (under_limit and read < table_rows):
            found.append(node)
    for child in node.get("Plans", ()):
        if node["Node Type"] == "Limit":
            child_under_limit = True
        else:
            streams = node["Node Type"] in STREAMING and child["Parent Relationship"] == "Outer"
            child_under_limit = under_limit and streams
        found += full_scans(child, table, table_rows, child_under_limit)
    return found
