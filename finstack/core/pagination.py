"""SQL pagination: one query for the page, one `count()` for the total."""

import math

import sqlalchemy as sa

from finstack.extensions import db


def paginate(statement, *, page, per_page, count_statement=None, rows=False):
    """Run `statement` for one page and return the list envelope.

    `count_statement` may be given when counting can skip joins or eager loads the page needs. `rows=True`: the
    items are the selected columns as mappings, not the first column's values.
    """
    count_source = count_statement if count_statement is not None else statement
    total = db.session.scalar(sa.select(sa.func.count()).select_from(count_source.order_by(None).subquery()))
    page_statement = statement.limit(per_page).offset((page - 1) * per_page)
    items = db.session.execute(page_statement).mappings().all() if rows else db.session.scalars(page_statement).all()
    return {
        "items": items,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": math.ceil(total / per_page) if total else 0,
        },
    }
