"""Side effects that must wait for the transaction: run `callback` only if the session commits.

Services call `after_commit(fn)` while they write; a rollback drops the callbacks unrun. This is
the one hook real-time pushes go through, so nothing is announced that did not happen. (E-mail does not wait for
the commit: it is a job row written in the transaction itself, `finstack.jobs`.)
"""

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack.extensions import db, socketio

log = logging.getLogger(__name__)

_KEY = "finstack_after_commit"


def after_commit(callback):
    db.session.info.setdefault(_KEY, []).append(callback)


def emit_after_commit(event, payload, rooms):
    """Push a Socket.IO `event` to `rooms` once the transaction commits: one emit, so a socket in several of the
    rooms receives it once."""
    rooms = list(dict.fromkeys(rooms))
    if rooms:
        after_commit(lambda: socketio.emit(event, payload, to=rooms))


def emit_batch_after_commit(messages):
    """Push `(event, payload, room)` messages once the transaction commits; `room` may be a list of rooms (one emit:
    a socket in several of them receives the message once).

    With REDIS_URL set the emit goes through the message queue, so any process (a gunicorn worker,
    the CLI) reaches sockets connected to any other.
    """

    def emit():
        for event, payload, room in messages:
            socketio.emit(event, payload, to=room)

    if messages:
        after_commit(emit)


def user_room(user_id):
    return f"user:{user_id}"


def conversation_room(conversation_id):
    """Every member's sockets join it at connect (finstack.realtime); chat events go to it."""
    return f"conversation:{conversation_id}"


def conversation_staff_room(conversation_id):
    """A ticket thread's staff room: its internal notes go there, and the requester's sockets never join it."""
    return f"conversation-staff:{conversation_id}"


def ticket_thread_rooms(conversation_id, staff):
    """The rooms of a ticket's conversation a reader's sockets are in: the public one, and for the ticket's staff the
    staff room too (finstack.chat.ticket_threads)."""
    return [conversation_room(conversation_id), *([conversation_staff_room(conversation_id)] if staff else [])]


def task_room(task_id):
    """Sockets join it with the `join_task` event, when their user may read the task."""
    return f"task:{task_id}"


def project_room(project_id):
    """Sockets join it with `join_project` when their user may read the project, and the live sockets of a user
    made a member join it at once; project and board events go to it."""
    return f"project:{project_id}"


def department_room(department_id):
    """A helpdesk department's agents' and leads' sockets: joined at connect, and at once when an agent is added
    (left when removed); the events of the tickets in its queue go to it."""
    return f"department:{department_id}"


@sa.event.listens_for(Session, "after_commit")
def _run_callbacks(session):
    callbacks = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed side effect must not undo or fail a committed write
            log.exception("After-commit callback %r failed", callback)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session, previous_transaction):
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
