"""Tag counts over the tasks a user may read."""

import sqlalchemy as sa

from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.text import contains_literal
from finstack.tasks.models import Task, TaskTag


def list_tags(user, query):
    """Each tag with the number of readable tasks carrying it, most used first, then by name: one GROUP BY."""
    count = sa.func.count().label("count")
    statement = (
        sa.select(TaskTag.tag.label("tag"), count)
        .join(Task, Task.id == TaskTag.task_id)
        .where(Task.live(), permissions.readable_tasks_clause(user, Task))
        .group_by(TaskTag.tag)
        .order_by(count.desc(), TaskTag.tag)
    )
    if query.get("search"):
        statement = statement.where(contains_literal(TaskTag.tag, query["search"]))
    return paginate(statement, page=query["page"], per_page=query["per_page"], cursor=query["cursor"], rows=True)
