"""Helpers for text filters."""

LIKE_ESCAPE = "\\"


def escape_like(term):
    """Make `%`, `_` and the escape character match themselves in a LIKE pattern."""
    return term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def contains_literal(column, term):
    """Case-insensitive literal substring match, usable on any column."""
    return column.ilike(f"%{escape_like(term)}%", escape=LIKE_ESCAPE)
