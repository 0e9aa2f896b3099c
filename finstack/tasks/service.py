"""Task rules: creation, updates, status changes, the trash (delete, restore, purge), bulk changes and the list."""

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.locks import claim
from finstack.core.pagination import StatementMemo, paginate
from finstack.core.sql import in_values
from finstack.core.text import contains_literal
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.projects.access import check_task_project
from finstack.projects.models import Project
from finstack.tasks import counts, events, ranks, recurrence, reminders, search, signals
from finstack.tasks.models import ACTIVE_STATUSES, PRIORITIES, STATUSES, Task, TaskReminder, TaskTag
from finstack.tasks.schemas import RELEVANCE
from finstack.users import service as users
from finstack.users.models import User


def _declared_order(column, values):
    """Sort key for a column of enumerated values: their declared order, not the alphabet."""
    return sa.case({value: rank for rank, value in enumerate(values)}, value=column)


SORT_COLUMNS = {
    "date_created": Task.date_created,
    "task_time": Task.task_time,
    "entity_name": Task.entity_name,
    "task_type": Task.task_type,
    # Life-cycle order (open, in_progress, closed, cancelled) and rank (low, medium, high). On PostgreSQL expression
    # indexes on these very CASEs serve the two sorts (migration 0024): change one, change the other.
    "status": _declared_order(Task.status, STATUSES),
    "priority": _declared_order(Task.priority, PRIORITIES),
    "updated_at": Task.updated_at,
}


# Changes after which the overdue sweep reminds again at once rather than 24 h after the last reminder.
REMINDER_RESET = {"contact_person_id", "status"}

# What the audit log keeps of a task moved to the trash.
DELETE_SNAPSHOT = ("entity_name", "task_type", "status", "contact_person_id", "created_by")

# Tasks deleted for good per transaction by `purge_trash`: each batch is a handful of statements (the lock, what hangs
# off the tasks, the DELETE) and a commit, so a larger batch is fewer round trips; 10,000 ids stay within SQLite's
# 32,766 parameters.
PURGE_BATCH = 10_000


def _check_assignee(actor, contact_person_id):
    """The assignee must be an active user, and members may not hand tasks to admins (000's rule)."""
    if contact_person_id is None:
        return
    assignee = users.find_active(contact_person_id)
    if assignee is None:
        raise ApiError(400, "Validation failed", {"contact_person_id": ["No active user has this id."]})
    if not permissions.can_assign_to(actor, assignee):
        raise ApiError(403, "Members cannot assign tasks to admins")


def _check_version(task, version):
    if version is not None and version != task.version:
        raise ApiError(
            409,
            "The task was changed by someone else; reload and try again",
            {"current_version": task.version},
            code="version_conflict",
        )


def get_task(task_id):
    """The task, or 404 when it does not exist or is in the trash."""
    task = db.session.get(Task, task_id)
    if task is None or task.deleted_at is not None:
        raise ApiError(404, "Task not found")
    return task


def get_readable_task(actor, task_id):
    """The task, or 404 when it does not exist or `actor` may not read it (its existence is not revealed)."""
    task = get_task(task_id)
    if not permissions.can_read_task(actor, task):
        raise ApiError(404, "Task not found")
    return task


def get_editable_task(actor, task_id):
    task = get_readable_task(actor, task_id)
    if not permissions.can_edit_task(actor, task):
        raise ApiError(403, "Only the task's creator, its assignee, a manager or an admin may change it")
    return task


def _assigned_draft(task_id, assignee_id, entity_name, task_type):
    return Draft(
        assignee_id,
        "task_assigned",
        f"Task assigned to you: {entity_name}",
        f"{task_type} for {entity_name} is now yours.",
        task_id,
    )


def _status_drafts(task_id, recipients, entity_name, old_status, new_status):
    return [
        Draft(
            user_id,
            "task_status_changed",
            f"Task {new_status.replace('_', ' ')}: {entity_name}",
            f"{entity_name} went from {old_status.replace('_', ' ')} to {new_status.replace('_', ' ')}.",
            task_id,
        )
        for user_id in dict.fromkeys(recipients)
    ]


def create_task(actor, *, status, reminders=(), **fields):
    _check_assignee(actor, fields.get("contact_person_id"))
    check_task_project(actor, fields.get("project_id"))
    task = Task(created_by=actor.id, status="open", **fields)
    task.set_status(status, utcnow())
    task.rank = ranks.top_rank(task.project_id, task.status)
    _set_reminders(task, reminders)
    db.session.add(task)
    db.session.flush()
    if task.repeat is not None:
        recurrence.start_series(task)
    audit.record(actor, "task.create", "task", task.id, {**fields, "status": status, "reminders": reminders})
    if task.contact_person_id is not None:
        notify([_assigned_draft(task.id, task.contact_person_id, task.entity_name, task.task_type)], actor)
    events.task_created(task)
    db.session.commit()
    return task


def _set_reminders(task, specs):
    """Absolute reminders may not lie after the task's time (a reminder is for before it)."""
    if any(spec.get("at") is not None and spec["at"] > task.task_time for spec in specs):
        raise ApiError(400, "Validation failed", {"reminders": ["A reminder's at may not be after task_time."]})
    reminders.set_reminders(task, specs)


def _reminder_specs(task):
    return [
        {"before_minutes": row.before_minutes} if row.kind == "relative" else {"at": row.remind_at}
        for row in task.reminders
    ]


def update_task(actor, task_id, changes):
    task = get_editable_task(actor, task_id)
    _check_version(task, changes.pop("version", None))
    reminder_specs = changes.pop("reminders", None)
    changed = audit.diff(task, changes)
    if reminder_specs is not None and reminder_specs != _reminder_specs(task):
        changed["reminders"] = {"from": _reminder_specs(task), "to": reminder_specs}  # the audit makes them JSON
    if not changed:
        return task
    if "contact_person_id" in changed:
        _check_assignee(actor, changes["contact_person_id"])
    if "project_id" in changed:
        check_task_project(actor, changes["project_id"])
    previous = {field: getattr(task, field) for field in changed if field != "reminders"}
    if changed.keys() & {"status", "project_id"}:
        # A new column: the card goes to its top (the key is read before the row changes; see finstack.tasks.ranks).
        task.rank = ranks.top_rank(
            changes.get("project_id", task.project_id), changes.get("status", task.status), exclude_id=task.id
        )
    for field in changed:
        if field not in ("status", "reminders"):
            setattr(task, field, changes[field])
    if "status" in changed:
        task.set_status(changes["status"], utcnow())
    if "reminders" in changed:
        _set_reminders(task, reminder_specs)
    elif "task_time" in changed:
        reminders.task_time_moved(task)
    if changed.keys() & {"tags", "reminders"}:
        task.updated_at = utcnow()  # they live in their own tables: touch the task so its version moves on too
    if changed.get("repeat") is not None:
        recurrence.start_series(task)
    if REMINDER_RESET & changed.keys():
        task.overdue_notified_at = None  # a new assignee, or a reopened task, starts a new overdue period
    audit.record(actor, "task.update", "task", task.id, changed)
    drafts = []
    if "contact_person_id" in changed and task.contact_person_id is not None:
        drafts.append(_assigned_draft(task.id, task.contact_person_id, task.entity_name, task.task_type))
    if "status" in changed:
        drafts += _status_drafts(
            task.id, (task.created_by, task.contact_person_id), task.entity_name, previous["status"], task.status
        )
    notify(drafts, actor)
    events.task_updated(task, previous)
    if "status" in changed:
        recurrence.after_status_change(task, previous["status"], utcnow())
    db.session.commit()
    return task


def change_status(actor, task_id, status, version=None):
    return update_task(actor, task_id, {"status": status, "version": version})


def delete_task(actor, task_id):
    """Move the task to the trash; `restore_task` brings it back, `purge_trash` deletes it for good."""
    task = get_readable_task(actor, task_id)
    if not permissions.can_delete_task(actor, task):
        raise ApiError(403, "Only the task's creator, a manager or an admin may delete it")
    _trash_tasks(actor, [task], "task.trash")
    db.session.commit()


def delete_project_tasks(actor, project_id):
    """Move every task of a project to the trash, as `delete_task` does one (the caller commits)."""
    project_tasks = db.session.scalars(sa.select(Task).where(Task.project_id == project_id, Task.live())).all()
    if project_tasks:
        _trash_tasks(actor, project_tasks, "task.trash_with_project")


def release_trashed_from_project(project_id):
    """The project is being deleted: its tasks in the trash stay there, in no project and so on no board (the
    caller commits)."""
    db.session.execute(
        sa.update(Task)
        .where(Task.project_id == project_id, Task.deleted_at.is_not(None))
        .values(project_id=None, rank=None, version=Task.version + 1)
        .execution_options(synchronize_session=False)
    )


def _trash_tasks(actor, tasks, action):
    """Mark `tasks` as trashed in one UPDATE, audited once; comments, attachments and chat stay, for a restore."""
    task_ids = [task.id for task in tasks]
    for task in tasks:
        events.task_deleted(task)
    if len(tasks) == 1:
        task = tasks[0]
        audit.record(actor, action, "task", task.id, {field: getattr(task, field) for field in DELETE_SNAPSHOT})
    else:
        audit.record(actor, action, "task", None, {"task_ids": task_ids})
    now = utcnow()
    db.session.execute(
        sa.update(Task)
        .where(Task.id.in_(task_ids), Task.live())
        .values(deleted_at=now, deleted_by=actor.id, updated_at=now, version=Task.version + 1)
        .execution_options(synchronize_session=False)
    )


def list_trash(actor, *, page, per_page, cursor=None):
    """Trashed tasks, most recently trashed first: those the actor may restore (members: the ones they created)."""
    conditions = (
        Task.deleted_at.is_not(None),
        permissions.readable_tasks_clause(actor, Task),
        permissions.deletable_tasks_clause(actor, Task),
    )
    statement = sa.select(Task).where(*conditions).order_by(Task.deleted_at.desc(), Task.id.desc())
    return paginate(
        statement, page=page, per_page=per_page, cursor=cursor, count_statement=sa.select(Task.id).where(*conditions)
    )


def restore_task(actor, task_id):
    """Take the task out of the trash, whole: its comments, attachments and chat were never removed.

    404 unless it is in the trash and readable by the actor; restoring takes the right to delete it. The row is
    locked first, so a restore and a purge of the same task never both happen.
    """
    task = db.session.scalar(
        sa.select(Task)
        .where(Task.id == task_id, Task.deleted_at.is_not(None))
        .with_for_update(of=Task)
        .execution_options(populate_existing=True)
    )
    if task is None or not permissions.can_read_task(actor, task):
        raise ApiError(404, "Task not found in the trash")
    if not permissions.can_delete_task(actor, task):
        raise ApiError(403, "Only the task's creator, a manager or an admin may restore it")
    audit.record(
        actor, "task.restore", "task", task.id, {"deleted_at": task.deleted_at, "deleted_by": task.deleted_by}
    )
    task.deleted_at = None
    task.deleted_by = None
    events.task_restored(task)
    db.session.commit()
    return task


def count_purgeable(cutoff):
    return db.session.scalar(sa.select(sa.func.count()).where(Task.deleted_at < cutoff))


def purge_trash(cutoff, *, batch_size=PURGE_BATCH, progress=None):
    """Delete for good the tasks trashed before `cutoff`, `batch_size` per transaction; returns how many.

    Each batch locks its rows (skipping those a restore holds), announces `signals.tasks_purged` so comments,
    attachments and chat delete theirs in the same transaction, deletes the tasks and commits; files go after the
    commit. A batch short of `batch_size` is the last: what it skipped is held by another transaction (a restore),
    and looking again would skip it again. A second run finds nothing left to do. `progress(n)` is called after
    each batch.
    """
    app = current_app._get_current_object()
    purged = 0
    while True:
        batch = claim(
            sa.select(Task.id)
            .where(Task.deleted_at < cutoff)
            .order_by(Task.deleted_at, Task.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True),
            "purge_batch",
        )
        if not batch.count:
            db.session.commit()  # ends the empty look's transaction, and with it its temporary table
            break
        signals.tasks_purged.send(app, task_ids=batch.ids)
        db.session.execute(
            sa.delete(Task).where(in_values(Task.id, batch.ids)).execution_options(synchronize_session=False)
        )
        db.session.commit()
        purged += batch.count
        if progress is not None:
            progress(batch.count)
        if batch.count < batch_size:
            break
    return purged


def _classify(actor, task_ids, allowed_clause):
    """Split requested ids into found tasks the actor may change, ids not found (or not readable by the actor),
    and ids forbidden; one query, `allowed_clause` (SQL) deciding."""
    requested = list(dict.fromkeys(task_ids))
    rows = db.session.execute(
        sa.select(Task, sa.case((allowed_clause(actor, Task), 1), else_=0)).where(
            Task.id.in_(requested), Task.live(), permissions.readable_tasks_clause(actor, Task)
        )
    )
    found = {task.id: (task, bool(allowed)) for task, allowed in rows}
    allowed = [found[task_id][0] for task_id in requested if task_id in found and found[task_id][1]]
    not_found = [task_id for task_id in requested if task_id not in found]
    forbidden = [task_id for task_id in requested if task_id in found and not found[task_id][1]]
    return allowed, not_found, forbidden


def bulk_update(actor, task_ids, changes, action="task.bulk_update"):
    """Apply `changes` (status, priority, contact_person_id) to every task the actor may edit: one UPDATE,
    one transaction, one audit entry; says which ids were updated, not found or forbidden."""
    if "contact_person_id" in changes:
        _check_assignee(actor, changes["contact_person_id"])
    tasks, not_found, forbidden = _classify(actor, task_ids, permissions.editable_tasks_clause)
    ids = [task.id for task in tasks]
    if ids:
        now = utcnow()
        values = {**changes, "updated_at": now, "version": Task.version + 1}
        if REMINDER_RESET & changes.keys():
            values["overdue_notified_at"] = None
        if "status" in changes:
            values["closed_at"] = (
                sa.case((Task.status == "closed", Task.closed_at), else_=now) if changes["status"] == "closed" else None
            )
            new_ranks = ranks.top_ranks_for(tasks, changes["status"])
            if new_ranks:
                values["rank"] = sa.case(new_ranks, value=Task.id, else_=Task.rank)
        drafts = _bulk_drafts(tasks, changes)
        previous = {task.id: {field: getattr(task, field) for field in changes} for task in tasks}
        really_changing = sa.or_(*(getattr(Task, field).is_distinct_from(value) for field, value in changes.items()))
        db.session.execute(
            sa.update(Task)
            .where(Task.id.in_(ids), Task.live(), really_changing)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        audit.record(actor, action, "task", None, {"task_ids": ids, **changes})
        notify(drafts, actor)
        refreshed = db.session.scalars(
            sa.select(Task).where(Task.id.in_(ids)).execution_options(populate_existing=True)
        ).all()
        for task in refreshed:
            events.task_updated(task, previous[task.id])
            if "status" in changes:
                recurrence.after_status_change(task, previous[task.id]["status"], now)
    db.session.commit()
    return {"updated": ids, "not_found": not_found, "forbidden": forbidden}


def _bulk_drafts(tasks, changes):
    drafts = []
    for task in tasks:
        if "status" in changes and changes["status"] != task.status:
            drafts += _status_drafts(
                task.id, (task.created_by, task.contact_person_id), task.entity_name, task.status, changes["status"]
            )
        new_assignee = changes.get("contact_person_id")
        if new_assignee is not None and new_assignee != task.contact_person_id:
            drafts.append(_assigned_draft(task.id, new_assignee, task.entity_name, task.task_type))
    return drafts


def bulk_change_status(actor, task_ids, status):
    return bulk_update(actor, task_ids, {"status": status}, action="task.bulk_status")


def bulk_cancel(actor, task_ids):
    return bulk_update(actor, task_ids, {"status": "cancelled"}, action="task.bulk_cancel")


def bulk_delete(actor, task_ids):
    """Managers and admins move many tasks to the trash at once; ids already there are not_found."""
    permissions.require(permissions.sees_all_tasks(actor), "Only managers and admins may delete tasks in bulk")
    tasks, not_found, _ = _classify(actor, task_ids, permissions.deletable_tasks_clause)
    if tasks:
        _trash_tasks(actor, tasks, "task.bulk_trash")
    db.session.commit()
    return {"deleted": [task.id for task in tasks], "not_found": not_found}


def task_filters(query):
    """SQL conditions for the list filters in `query` (a loaded TaskListQuery)."""
    conditions = []
    for field in ("status", "priority", "contact_person_id", "created_by"):
        if query.get(field) is not None:
            conditions.append(getattr(Task, field) == query[field])
    for field in ("task_type", "entity_name"):
        if query.get(field):
            conditions.append(contains_literal(getattr(Task, field), query[field]))
    if query.get("date_from"):
        conditions.append(Task.date_created >= query["date_from"])
    if query.get("date_to"):
        conditions.append(Task.date_created <= query["date_to"])
    if query.get("due_from"):
        conditions.append(Task.task_time >= query["due_from"])
    if query.get("due_to"):
        conditions.append(Task.task_time <= query["due_to"])
    if query.get("q"):
        conditions.append(search.condition(query["q"]))
    if query.get("project_id") is not None:
        conditions.append(Task.project_id == query["project_id"])
    if query.get("team_id") is not None:
        conditions.append(Task.project_id.in_(sa.select(Project.id).where(Project.team_id == query["team_id"])))
    if query.get("no_project") is not None:
        conditions.append(Task.project_id.is_(None) if query["no_project"] else Task.project_id.is_not(None))
    for tag in query.get("tag") or ():
        conditions.append(sa.exists().where(TaskTag.task_id == Task.id, TaskTag.tag == tag))
    if query.get("overdue"):
        # Written as the expression PostgreSQL indexes (migration 0024): its statistics tell the planner how few
        # tasks are overdue, which it cannot guess from status and task_time taken separately.
        conditions.append(Task.active_due() < utcnow())
    elif query.get("overdue") is not None:
        conditions.append(sa.not_(sa.and_(Task.status.in_(ACTIVE_STATUSES), Task.task_time < utcnow())))
    return conditions


def list_tasks(actor, query):
    """A page of tasks: the ids are paged on `tasks` alone (filters, ORDER BY, LIMIT), and in the same statement
    only that page's rows are read with their two users, of whom only the columns the response shows (`_PAGE_ROWS`).
    The total comes
    from the maintained counts when the filters allow (`counts.list_total`). A list the counts answer is built once
    per filters, sort and reader (`_LISTS`), then reused with its cache key."""
    dialect_name = db.session.get_bind().dialect.name
    key = _list_key(actor, query, dialect_name)
    built = _LISTS.get(key) if key is not None else None
    if built is None:
        conditions = [Task.live(), permissions.readable_tasks_clause(actor, Task), *task_filters(query)]
        statement = sa.select(Task.id).where(*conditions)
        if query["sort_by"] == RELEVANCE:
            statement, column = search.with_relevance(statement, query["q"])
        else:
            column = SORT_COLUMNS[query["sort_by"]]
        direction = sa.desc if query["sort_order"] == "desc" else sa.asc
        statement = statement.order_by(direction(column), direction(Task.id))
        built = (statement, sa.select(Task.id).where(*conditions), counts.list_total(query, actor))
        if key is not None and built[2] is not None:
            _LISTS.remember(key, built)
        else:
            key = None
    statement, count_statement, exact_total = built
    return paginate(
        statement,
        page=query["page"],
        per_page=query["per_page"],
        cursor=query["cursor"],
        count_statement=count_statement,
        exact_total=exact_total,
        rows_from=_PAGE_ROWS.get(dialect_name, _PAGE_ROWS[None]),
        memo_key=key,
    )


# Task lists by `_list_key`: their statement, count statement and total (those the counts answer alone).
_LISTS = StatementMemo()
# The query fields that do not change a list's statements (`paginate` keys the page statement by page and size).
_PAGING_FIELDS = ("page", "per_page", "cursor")


def _list_key(actor, query, dialect_name):
    """What a task list's statements depend on: the database, the reader's visibility and the query's filters and
    sort, or None for a list that depends on the time (`overdue`) or holds a value that is not hashable."""
    if query.get("overdue") is not None:
        return None
    reader = "all" if permissions.sees_all_tasks(actor) else actor.id
    fields = tuple(
        (name, tuple(value) if isinstance(value, list) else value)
        for name, value in sorted(query.items())
        if name not in _PAGING_FIELDS
    )
    key = (dialect_name, actor.is_active, reader, fields)
    try:
        hash(key)
    except TypeError:
        return None
    return key


# What the list shows of a task (TaskOut): its columns, its two users' brief columns, its tags and reminders, read
# by Core statements built once (so are their cache keys), for a page's tasks alone, into plain dicts.
LIST_COLUMNS = (
    "id",
    "entity_name",
    "task_type",
    "task_time",
    "contact_person_id",
    "note",
    "status",
    "priority",
    "created_by",
    "date_created",
    "updated_at",
    "closed_at",
    "version",
    "project_id",
    "rank",
    "repeat",
    "series_id",
    "occurrence",
)
_TASKS, _TAGS, _REMINDERS = Task.__table__, TaskTag.__table__, TaskReminder.__table__
_CONTACT, _CREATOR = User.__table__.alias("contact"), User.__table__.alias("creator")


def _uuid_as_text(column):
    return sa.cast(column, sa.Text).label(column.name) if isinstance(column.type, sa.Uuid) else column


def _children_in_row():
    """PostgreSQL: a task's tags and its reminders (soonest first, as `Task.reminders`) as arrays of its row."""

    def reminders(column):
        ordered = aggregate_order_by(column, _REMINDERS.c.remind_at, _REMINDERS.c.id)
        aggregated = sa.func.array_agg(ordered, type_=postgresql.ARRAY(column.type))
        return sa.select(aggregated).where(_REMINDERS.c.task_id == _TASKS.c.id).scalar_subquery()

    tags = sa.func.array_agg(_TAGS.c.tag, type_=postgresql.ARRAY(_TAGS.c.tag.type))
    return (
        sa.select(tags).where(_TAGS.c.task_id == _TASKS.c.id).scalar_subquery().label("tag_list"),
        reminders(_REMINDERS.c.before_minutes).label("reminder_minutes"),
        reminders(_REMINDERS.c.remind_at).label("reminder_at"),
        reminders(_REMINDERS.c.sent_at).label("reminder_sent_at"),
    )


def _task_rows(dialect_name, tasks_from):
    """What the list shows of the tasks in `tasks_from` (the tasks table, or a page joined to it), with their two
    users. PostgreSQL reads the shown UUIDs as text, which is what the response prints (psycopg2 would build a
    uuid.UUID of each for the dump to turn back into text), and the tags and reminders in the same row; elsewhere
    the columns are read as they are and `_items` reads the tags and reminders by a second statement."""
    in_postgresql = dialect_name == "postgresql"
    columns = [
        *(_uuid_as_text(_TASKS.c[name]) if in_postgresql else _TASKS.c[name] for name in LIST_COLUMNS),
        _CONTACT.c.username.label("contact_username"),
        _CONTACT.c.full_name.label("contact_full_name"),
        _CREATOR.c.username.label("creator_username"),
        _CREATOR.c.full_name.label("creator_full_name"),
        *(_children_in_row() if in_postgresql else ()),
    ]
    return (
        sa.select(*columns)
        .select_from(tasks_from)
        .outerjoin(_CONTACT, _CONTACT.c.id == _TASKS.c.contact_person_id)
        .join(_CREATOR, _CREATOR.c.id == _TASKS.c.created_by)
    )


# Without arrays (SQLite): a page's reminders (soonest first) and tags in one UNION ALL, by the page's ids.
_TAGS_AND_REMINDERS = sa.union_all(
    sa.select(
        _REMINDERS.c.task_id,
        sa.literal_column("0").label("kind"),
        sa.null().label("tag"),
        _REMINDERS.c.before_minutes,
        _REMINDERS.c.remind_at,
        _REMINDERS.c.sent_at,
        _REMINDERS.c.id.label("reminder_id"),
    ).where(_REMINDERS.c.task_id.in_(sa.bindparam("ids", expanding=True))),
    sa.select(_TAGS.c.task_id, sa.literal_column("1"), _TAGS.c.tag, sa.null(), sa.null(), sa.null(), sa.null()).where(
        _TAGS.c.task_id.in_(sa.bindparam("ids", expanding=True))
    ),
).order_by(sa.literal_column("kind"), sa.literal_column("remind_at"), sa.literal_column("reminder_id"))


def _user_brief(user_id, username, full_name):
    return None if user_id is None else {"id": user_id, "username": username, "full_name": full_name}


def _items(rows):
    """The dicts TaskOut dumps, from `_task_rows` rows, in their order. The ids in them may be text or UUIDs (by
    database); the dump prints both alike."""
    now = utcnow()
    items = []
    for row in rows:
        item = dict(zip(LIST_COLUMNS, row, strict=False))
        item["contact_person"] = _user_brief(item["contact_person_id"], row.contact_username, row.contact_full_name)
        item["creator"] = _user_brief(item["created_by"], row.creator_username, row.creator_full_name)
        item["is_overdue"] = item["status"] in ACTIVE_STATUSES and item["task_time"] < now
        if "tag_list" in row._fields:
            item["tags"] = row.tag_list or []
            reminders = zip(row.reminder_minutes or (), row.reminder_at or (), row.reminder_sent_at or (), strict=True)
            item["reminders"] = [{"before_minutes": m, "at": at, "sent_at": sent} for m, at, sent in reminders]
        else:
            item["tags"], item["reminders"] = [], []
        items.append(item)
    if items and "tag_list" not in rows[0]._fields:
        by_id = {item["id"]: item for item in items}
        for row in db.session.connection().execute(_TAGS_AND_REMINDERS, {"ids": list(by_id)}).all():
            item = by_id[row.task_id]
            if row.kind == 0:
                reminder = {"before_minutes": row.before_minutes, "at": row.remind_at, "sent_at": row.sent_at}
                item["reminders"].append(reminder)
            else:
                item["tags"].append(row.tag)
    for item in items:
        item["tags"].sort()  # as `Task.tags`: Python's order, not the database collation's
    return items


def _page_rows(dialect_name):
    """`paginate`'s `rows_from` pair for the task list: each id of the page joined to its task row, then `_items`."""
    return lambda page: _task_rows(dialect_name, page.join(_TASKS, _TASKS.c.id == page.c.id)), _items


_PAGE_ROWS = {dialect_name: _page_rows(dialect_name) for dialect_name in ("postgresql", None)}
# Tasks by id (the dashboard's): on PostgreSQL the ids as one text array cast to uuid[] (`= ANY(:ids)`, nothing to
# render per request, where an expanding IN renders one parameter per id into the SQL on every execution).
_BY_IDS = {
    "postgresql": _task_rows("postgresql", _TASKS).where(
        _TASKS.c.id == sa.any_(sa.cast(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text)), postgresql.ARRAY(sa.Uuid)))
    ),
    None: _task_rows(None, _TASKS).where(_TASKS.c.id.in_(sa.bindparam("ids", expanding=True))),
}


def load_tasks(task_ids):
    """What TaskOut shows of the tasks of `task_ids`, in that order, as dicts (see `_items`)."""
    if not task_ids:
        return []
    connection = db.session.connection()
    statement = _BY_IDS.get(connection.dialect.name, _BY_IDS[None])
    # `.all()`: one fetchall, not a fetchone per row.
    by_id = {str(item["id"]): item for item in _items(connection.execute(statement, {"ids": task_ids}).all())}
    return [by_id[str(task_id)] for task_id in task_ids]
