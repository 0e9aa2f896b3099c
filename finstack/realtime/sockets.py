"""Socket.IO connection handlers and the task-room events.

connect     auth `{"token": <access token>}` (or `?token=`); refused with a connect error whose data is
            `{"error": <message>, "code": token_missing|token_invalid|token_expired|token_revoked|user_inactive}`.
            Joins `user:<id>` and `conversation:<id>` for each of the user's conversations, the rooms of the ticket
            threads of the active tickets the user requested, holds or whose department they lead
            (`conversation:<id>`; staff also `conversation-staff:<id>`, where internal notes go), and
            `department:<id>` for each helpdesk department the user is an agent or lead of (its tickets' events).
            With `auth.last_seq` (a whole number; `validation_failed` otherwise) the socket is first sent the user's
            events after it, in order, then `events_replayed {last_seq}`, then live ones (README "Missed events").
join_task   `{"task_id"}` → ack `{"ok": true}` or `{"error", "details"}`; joins `task:<id>` if the user may read it:
            the task's events and its chat thread's `chat_message`, `typing` and `read_receipt`.
leave_task  `{"task_id"}` → ack `{"ok": true}`.
join_project  `{"project_id"}` → ack `{"ok": true}`, or the 404 error ack if the user may not read the project;
            joins `project:<id>`: project events and `task_moved` of its board.
leave_project `{"project_id"}` → ack `{"ok": true}`.
"""

import logging

from flask import request, session
from flask_socketio import join_room, leave_room, rooms
from socketio.exceptions import ConnectionRefusedError as Refused

from finstack.core.events import conversation_room, project_room, task_room, user_room
from finstack.extensions import db
from finstack.projects.access import get_readable_project
from finstack.realtime import service
from finstack.realtime.handlers import client_event
from finstack.realtime.registry import CONVERSATION_PREFIX, Connection
from finstack.realtime.schemas import ProjectRoomIn, TaskRoomIn
from finstack.tasks import service as tasks
from finstack.tickets import events as ticket_events

log = logging.getLogger(__name__)


def _registry():
    from finstack.realtime import socket_registry

    return socket_registry()


def _presented_token(auth):
    if isinstance(auth, dict) and auth.get("token"):
        return auth["token"]
    return request.args.get("token")


def _conversation_rooms(user):
    """`(conversation rooms, staff rooms)`: the rooms of the user's direct and group conversations and ticket threads
    (presence goes to those), and the staff rooms of the ticket threads they are staff of."""
    from finstack.chat import conversations, ticket_threads  # chat imports finstack.realtime: import when needed

    tickets, staff = ticket_threads.rooms_at_connect(user)
    return [conversation_room(cid) for cid in conversations.conversation_ids_for(user)] + tickets, staff


def _last_seq(auth):
    """`auth.last_seq`: replay the events after it. A whole number of 0 or more, or absent (no replay)."""
    value = auth.get("last_seq") if isinstance(auth, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise service.SocketAuthError("validation_failed", "last_seq must be a whole number of 0 or more")
    return value


def on_connect(auth=None):
    try:
        last_seq = _last_seq(auth)
        user, claims = service.authenticate(_presented_token(auth))
        user_id = str(user.id)
        conversation_rooms, staff_rooms = _conversation_rooms(user)
        department_rooms = ticket_events.department_rooms(user.id)
    except service.SocketAuthError as error:
        raise Refused(error.message, {"error": error.message, "code": error.code}) from None
    except Exception:
        log.exception("Socket connect failed")
        raise Refused("Internal server error", {"error": "Internal server error", "code": "internal_error"}) from None
    finally:
        db.session.remove()

    for room in (user_room(user_id), *conversation_rooms, *staff_rooms, *department_rooms):
        join_room(room)
    session["user_id"] = user_id
    registry = _registry()
    connection = Connection(request.sid, user_id, claims["fam"], claims["ver"], conversation_rooms)
    if registry.add(connection, last_seq):
        registry.announce(connection, online=True)
    if last_seq is not None:
        # Events sent before the CONNECT packet are kept by the clients (socket.io-client buffers them).
        registry.server.start_background_task(registry.replay, request.sid, user_id)


def on_disconnect(reason=None):
    registry = _registry()
    connection, last = registry.remove(request.sid)
    if connection is not None and last:
        # The rooms it is in now: conversations joined after connect count too.
        connection.conversation_rooms = [room for room in rooms() if room.startswith(CONVERSATION_PREFIX)]
        registry.announce(connection, online=False)


@client_event(TaskRoomIn)
def on_join_task(user, data):
    task = tasks.get_readable_task(user, data["task_id"])
    join_room(task_room(task.id))
    return {"ok": True}


@client_event(TaskRoomIn)
def on_leave_task(user, data):
    leave_room(task_room(data["task_id"]))
    return {"ok": True}


@client_event(ProjectRoomIn)
def on_join_project(user, data):
    project = get_readable_project(user, data["project_id"])
    join_room(project_room(project.id))
    return {"ok": True}


@client_event(ProjectRoomIn)
def on_leave_project(user, data):
    leave_room(project_room(data["project_id"]))
    return {"ok": True}


def register_handlers(sio):
    """Bind the handlers to the server `socketio.init_app` just built (each app gets its own server)."""
    sio.on_event("connect", on_connect)
    sio.on_event("disconnect", on_disconnect)
    sio.on_event("join_task", on_join_task)
    sio.on_event("leave_task", on_leave_task)
    sio.on_event("join_project", on_join_project)
    sio.on_event("leave_project", on_leave_project)
