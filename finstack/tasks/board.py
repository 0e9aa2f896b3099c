"""The kanban board of a project: its columns in board order, and moving a card (finstack.tasks.ranks)."""

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import notify
from finstack.projects.access import get_readable_project
from finstack.tasks import events, ranks, recurrence, service
from finstack.tasks.models import STATUSES, Task

BOARD_STATUSES = ("open", "in_progress", "closed")


def project_board(actor, project_id, *, per_column, include_cancelled):
    """Per column: how many cards the actor may read, and the first `per_column` of them, top first. One count
    query, then one query per column (the index on (project_id, status, rank) serves each)."""
    project = get_readable_project(actor, project_id)
    statuses = STATUSES if include_cancelled else BOARD_STATUSES
    visible = sa.and_(
        Task.project_id == project.id, Task.live(), permissions.readable_tasks_clause(actor, Task)
    )
    totals = dict(
        db.session.execute(
            sa.select(Task.status, sa.func.count()).where(visible, Task.status.in_(statuses)).group_by(Task.status)
        ).all()
    )
    return {
        "columns": [
            {
                "status": status,
                "total": totals.get(status, 0),
                "items": db.session.scalars(
                    sa.select(Task).where(visible, Task.status == status).order_by(Task.rank).limit(per_column)
                ).all(),
            }
            for status in statuses
        ]
    }


def _neighbour(field, neighbour_id, task, status):
    if neighbour_id is None:
        return None
    if neighbour_id == task.id:
        raise ApiError(400, "Validation failed", {field: ["A card cannot be placed next to itself."]})
    neighbour = db.session.scalar(
        sa.select(Task).where(Task.id == neighbour_id, Task.live()).execution_options(populate_existing=True)
    )
    if neighbour is None or neighbour.project_id != task.project_id or neighbour.status != status:
        raise ApiError(400, "Validation failed", {field: ["No card of this project's target column has this id."]})
    return neighbour


def _bounds(task, status, after, before):
    """The keys the card goes between: below `after`, above `before`, or at the top; the column's other cards,
    trashed ones included (their keys stay taken), decide the other side."""
    others = sa.and_(ranks.column(task.project_id, status), Task.id != task.id)
    if after is not None:
        following = db.session.scalar(sa.select(sa.func.min(Task.rank)).where(others, Task.rank > after.rank))
        return after.rank, following
    if before is not None:
        preceding = db.session.scalar(sa.select(sa.func.max(Task.rank)).where(others, Task.rank < before.rank))
        return preceding, before.rank
    return None, db.session.scalar(sa.select(sa.func.min(Task.rank)).where(others))


def _check_adjacent(task, status, after, before):
    """With both neighbours given, they must still be next to each other (the client's view is current)."""
    between_them = db.session.scalar(
        sa.select(sa.func.count()).where(
            ranks.column(task.project_id, status),
            Task.live(),
            Task.id != task.id,
            Task.rank > after.rank,
            Task.rank < before.rank,
        )
    )
    if not after.rank < before.rank or between_them:
        raise ApiError(
            409,
            "after_id and before_id are not next to each other in the column; reload the board",
            {"after_id": [str(after.id)], "before_id": [str(before.id)]},
        )


def _already_there(task, status, low, high):
    return task.status == status and (low is None or low < task.rank) and (high is None or task.rank < high)


def move_task(actor, task_id, *, status, after_id=None, before_id=None, version=None):
    """Put the task in column `status`, below `after_id`, above `before_id`, or at the top: one row written (the
    column is rebalanced first when the new key would be too long), under the column's lock."""
    task = service.get_editable_task(actor, task_id)
    if task.project_id is None:
        raise ApiError(409, "The task is in no project, so it has no place on a board; give it a project first")
    service._check_version(task, version)
    for attempt in range(2):
        rank = _new_rank(task, status, after_id, before_id)
        if rank is None:
            return task
        try:
            with db.session.begin_nested():
                _apply_move(actor, task, status, rank)
            break
        except IntegrityError:
            # A writer that does not take the column's lock took this key: read the column again, once.
            if attempt:
                raise
    db.session.commit()
    return task


def _new_rank(task, status, after_id, before_id):
    """The card's key in its new place, under the column's lock; None when it is there already."""
    ranks.lock_column(task.project_id, status)
    with db.session.no_autoflush:
        after = _neighbour("after_id", after_id, task, status)
        before = _neighbour("before_id", before_id, task, status)
        if after is not None and before is not None:
            _check_adjacent(task, status, after, before)
        if _already_there(task, status, *_bounds(task, status, after, before)):
            return None
        return ranks.fitted(task.project_id, status, lambda: _bounds(task, status, after, before))


def _apply_move(actor, task, status, rank):
    """Write the move (the one statement that can meet a unique violation), then what follows from it."""
    previous = {"status": task.status, "rank": task.rank}
    task.rank = rank
    if status != task.status:
        task.set_status(status, utcnow())
        task.overdue_notified_at = None  # as any status change: a reopened task starts a new overdue period
    db.session.flush()
    if status != previous["status"]:
        notify(
            service._status_drafts(
                task.id, (task.created_by, task.contact_person_id), task.entity_name, previous["status"], status
            ),
            actor,
        )
    audit.record(
        actor,
        "task.move",
        "task",
        task.id,
        {field: {"from": previous[field], "to": getattr(task, field)} for field in ("status", "rank")},
    )
    events.task_moved(task, previous["status"])
    recurrence.after_status_change(task, previous["status"], utcnow())
    events.task_updated(task, {"status": previous["status"]} if previous["status"] != status else None)
