"""Real time: Socket.IO connections, rooms, presence, and dropping sockets whose session has ended.

Rooms: `user:<id>` (every socket of a user, joined at connect), `conversation:<id>` (every conversation of the user,
joined at connect; `join_user` adds later ones), `task:<id>` (joined on request with `join_task`), `project:<id>`
(joined with `join_project`, and by `join_user` when the user becomes a project member).

Services call the functions below *after* their transaction commits; each acts on this process's sockets at once
and, when REDIS_URL is set, on every other process's through a Redis channel. Without Redis, each server process
re-checks its sockets every SOCKET_RECHECK_SECONDS (0.5 s) anyway, so a logout, password change or deactivation
made anywhere (the CLI included) drops the sockets within a second.
"""

from flask import current_app

from finstack.core.events import set_delivery
from finstack.extensions import socketio
from finstack.realtime.registry import Registry

EXTENSION = "finstack.realtime"


def init_app(app):
    """Bind the Socket.IO handlers and give the app its socket registry.

    Call after `socketio.init_app(app)`: that builds a new Socket.IO server for the app, and handlers are bound to
    it here (decorating at import time would bind them only to the server that existed then, i.e. the first app's).
    """
    from finstack.chat import sockets as chat_sockets
    from finstack.realtime import sockets

    sockets.register_handlers(socketio)
    chat_sockets.register_handlers(socketio)
    app.extensions[EXTENSION] = Registry(app, socketio.server)
    set_delivery(deliver_events)


def socket_registry():
    return current_app.extensions[EXTENSION]


def disconnect_user(user_id):
    """Drop every live socket of `user_id` (deactivation), in every process."""
    socket_registry().publish({"op": "kick_user", "user_id": str(user_id)})


def disconnect_family(family_id):
    """Drop the live sockets opened with a token of the sign-in `family_id` (logout, refresh reuse), everywhere."""
    socket_registry().publish({"op": "kick_family", "family": str(family_id)})


def join_user(user_id, rooms):
    """Put the live sockets of `user_id` into `rooms` (e.g. a conversation they were just added to)."""
    socket_registry().publish({"op": "join", "user_id": str(user_id), "rooms": list(rooms)})


def leave_user(user_id, rooms):
    """Take the live sockets of `user_id` out of `rooms` (e.g. removed from a conversation)."""
    socket_registry().publish({"op": "leave", "user_id": str(user_id), "rooms": list(rooms)})


def deliver_events(event, payload, seqs, rooms):
    """A recorded event (finstack.core.events), in every process: `seqs` [(user_id, seq)] to those users' sockets
    with their seq (held while a socket replays), `rooms` to the other sockets in them."""
    socket_registry().publish(
        {"op": "events", "event": event, "payload": payload, "seqs": [list(pair) for pair in seqs], "rooms": rooms}
    )
