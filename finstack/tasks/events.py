"""Task events for live clients, emitted only if the transaction commits.

Each goes to the creator's and the assignee's `user:<id>` rooms, if they may read the task
(`permissions.task_readers_clause`), and to the task's `task:<id>` room (sockets that sent `join_task`, which only
readers may). A socket in several of these rooms receives the event once.

    task_created  TaskOut
    task_updated  TaskOut (the task as committed); a previous assignee is told too
    task_deleted  {"id": <task id>} (moved to the trash)
    task_restored TaskOut (back from the trash)
    task_moved    {id, project_id, from_status, to_status, rank, version}: a card's new place on its project's board,
                  to the `project:<id>` room and the project members' `user:<id>` rooms (task_updated follows too)

Each is also published to the webhooks subscribed to it (`finstack.webhooks.publish`), with the same payload.

Call them from the task service after the change is applied and before `db.session.commit()`: they flush, so the
payload carries the new `version` and `updated_at`.
"""

import sqlalchemy as sa

from finstack import webhooks
from finstack.core import permissions
from finstack.core.events import emit_after_commit, project_room, task_room, user_room
from finstack.extensions import db
from finstack.projects.access import member_ids
from finstack.projects.models import Project
from finstack.tasks.schemas import TaskOut
from finstack.users.models import User

TASK_CREATED = "task_created"
TASK_UPDATED = "task_updated"
TASK_DELETED = "task_deleted"
TASK_RESTORED = "task_restored"
TASK_MOVED = "task_moved"


def _rooms(task, *extra_user_ids):
    user_ids = {task.created_by, task.contact_person_id, *extra_user_ids} - {None}
    readers = db.session.scalars(
        sa.select(User.id).where(User.id.in_(user_ids), permissions.task_readers_clause(User, task)).order_by(User.id)
    )
    return [*(user_room(user_id) for user_id in readers), task_room(task.id)]


def _dump(task):
    db.session.flush()  # version, updated_at and defaults as they will be committed
    return TaskOut().dump(task)


def task_created(task):
    payload = _dump(task)
    emit_after_commit(TASK_CREATED, payload, _rooms(task))
    webhooks.publish(TASK_CREATED, payload)


def task_updated(task, changes=None):
    """`changes`: the previous values of the changed fields ({field: old value}), if known; a previous
    assignee (`contact_person_id`) is told as well, so the task leaves their list."""
    previous_assignee = (changes or {}).get("contact_person_id")
    payload = _dump(task)
    emit_after_commit(TASK_UPDATED, payload, _rooms(task, previous_assignee))
    webhooks.publish(TASK_UPDATED, payload)


def task_deleted(task):
    emit_after_commit(TASK_DELETED, {"id": str(task.id)}, _rooms(task))
    webhooks.publish(TASK_DELETED, {"id": str(task.id)})


def task_restored(task):
    payload = _dump(task)
    emit_after_commit(TASK_RESTORED, payload, _rooms(task))
    webhooks.publish(TASK_RESTORED, payload)


def task_moved(task, from_status):
    payload = {
        "id": str(task.id),
        "project_id": str(task.project_id),
        "from_status": from_status,
        "to_status": task.status,
        "rank": task.rank,
        "version": task.version,
    }
    members = member_ids(db.session.get(Project, task.project_id))
    emit_after_commit(TASK_MOVED, payload, [project_room(task.project_id), *map(user_room, members)])
    webhooks.publish(TASK_MOVED, payload)
