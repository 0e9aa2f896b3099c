"""Side effects that must wait for the transaction: run `callback` only if the session commits.

Services call `after_commit(fn)` while they write; a rollback drops the callbacks unrun. This is
the one hook real-time pushes go through, so nothing is announced that did not happen. (E-mail does not wait for
the commit: it is a job row written in the transaction itself, `finstack.jobs`.)
"""

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from finstack.core import event_log
from finstack.extensions import db, socketio

log = logging.getLogger(__name__)

_KEY = "finstack_after_commit"


def after_commit(callback):
    db.session.info.setdefault(_KEY, []).append(callback)


def emit_after_commit(event, payload, rooms):
    """Record `event` for each user `rooms` name (finstack.core.event_log) in this transaction, and push it once it
    commits: to each such user's room with their `seq` added to the payload, and to the ad-hoc rooms (`task:`,
    `project:`, …) for the other sockets in them. A socket receives it once."""
    emit_batch_after_commit([(event, payload, list(rooms))])


def emit_batch_after_commit(messages):
    """`emit_after_commit` for several `(event, payload, room)` messages; `room` may be a list of rooms.

    With REDIS_URL set the emits go through the message queue (and the ad-hoc room emits through the socket
    registry's control channel), so any process (a gunicorn worker, the CLI) reaches sockets connected to any other.
    """
    planned = []
    for event, payload, rooms in messages:
        rooms = list(dict.fromkeys([rooms] if isinstance(rooms, str) else rooms))
        users, adhoc = event_log.recipients(rooms)
        planned.append((event, payload, users, event_log.scope_of(rooms), adhoc))
    if not planned:
        return
    delivered = event_log.record([(event, payload, users, scope) for event, payload, users, scope, _ in planned])

    def emit():
        for (event, payload, _, _, adhoc), seqs in zip(planned, delivered, strict=True):
            deliver(event, payload, [(str(user_id), seq) for user_id, seq in seqs], adhoc)

    after_commit(emit)


def deliver_recorded_after_commit(event, recorded):
    """Push `event`s already in the event log (`event_log.record_from`) once the transaction commits: `recorded` is
    `(user id, seq, payload)` per event, each to its user's room only."""

    def emit():
        for user_id, seq, payload in recorded:
            deliver(event, payload, [(str(user_id), seq)], [])

    after_commit(emit)


def deliver_batch_after_commit(event, deliveries):
    """Push `event`s already in the event log once the transaction commits, as `emit_batch_after_commit` pushes its
    messages: `deliveries` is `(payload, [(user id as text, seq)], ad-hoc rooms)` per message, in order."""

    def emit():
        for payload, seqs, rooms in deliveries:
            deliver(event, payload, seqs, rooms)

    after_commit(emit)


def _plain_delivery(event, payload, seqs, rooms):
    for user_id, seq in seqs:
        socketio.emit(event, {**payload, "seq": seq}, to=user_room(user_id))
    if rooms:
        socketio.emit(event, payload, to=rooms)


# How a recorded event reaches sockets: `seqs` [(user_id, seq)] to each user's sockets with its seq, and `rooms`
# (ad-hoc) to their other sockets. finstack.realtime installs one that holds live events while a socket replays.
deliver = _plain_delivery


def set_delivery(delivery):
    global deliver
    deliver = delivery


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
