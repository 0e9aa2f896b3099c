"""The sockets this process holds, and for whom: presence, kicks, room changes and the periodic re-check.

One registry per app (one app per server process). Everything here is per process by nature: Socket.IO sids live
in the process that accepted them. What must reach other processes (kicks, room changes) goes through a Redis
channel when REDIS_URL is set; the periodic re-check covers the rest (a CLI without Redis, a lost message, a logout
racing with a connect).
"""

import json
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

NAMESPACE = "/"
CONTROL_CHANNEL_SUFFIX = "-control"
CONVERSATION_PREFIX = "conversation:"
TASK_PREFIX = "task:"
DEPARTMENT_PREFIX = "department:"


@dataclass
class Connection:
    sid: str
    user_id: str
    family: str  # the token's sign-in (`fam` claim)
    version: int  # the token's `ver` claim
    conversation_rooms: list = field(default_factory=list)

    @property
    def session(self):
        """What the periodic re-check looks at: `(user_id, family, version)`."""
        return (self.user_id, self.family, self.version)


class Registry:
    def __init__(self, app, server):
        self.app = app
        self.server = server
        self.host_id = uuid.uuid4().hex
        self.redis_url = app.config["REDIS_URL"]
        self.channel = "finstack" + CONTROL_CHANNEL_SUFFIX
        self.interval = app.config["SOCKET_RECHECK_SECONDS"]
        self._lock = threading.RLock()
        self._connections = {}  # sid -> Connection
        self._sids_by_user = defaultdict(set)  # user id -> sids
        self._watching = False
        self._listening = False
        self._redis = None

    # -- bookkeeping -----------------------------------------------------------------------------------------------

    def add(self, connection):
        """Record a socket; True when it is the user's first in this process (they came online)."""
        with self._lock:
            self._connections[connection.sid] = connection
            sids = self._sids_by_user[connection.user_id]
            sids.add(connection.sid)
            first = len(sids) == 1
            if not self._watching:
                self._watching = True
                self.server.start_background_task(self._watch)
            if self.redis_url and not self._listening:
                self._listening = True
                self.server.start_background_task(self._listen)
        return first

    def remove(self, sid):
        """Forget a socket; returns (connection, last) — last is True when the user has no socket left here."""
        with self._lock:
            connection = self._connections.pop(sid, None)
            if connection is None:
                return None, False
            sids = self._sids_by_user.get(connection.user_id, set())
            sids.discard(sid)
            if not sids:
                self._sids_by_user.pop(connection.user_id, None)
            return connection, not sids

    def sids_for_user(self, user_id):
        with self._lock:
            return sorted(self._sids_by_user.get(str(user_id), ()))

    def connections(self):
        with self._lock:
            return list(self._connections.values())

    def __len__(self):
        with self._lock:
            return len(self._connections)

    # -- operations on a user's sockets, here and in every other process --------------------------------------------

    def publish(self, operation):
        """Apply `operation` to this process's sockets, then hand it to the other processes (with REDIS_URL)."""
        self.apply(operation)
        if self.redis_url:
            try:
                self._client().publish(self.channel, json.dumps({**operation, "host_id": self.host_id}))
            except Exception:  # the periodic re-check still drops ended sessions; a room change waits for reconnect
                log.exception("Could not publish %s to the other processes", operation.get("op"))

    def apply(self, operation):
        op = operation.get("op")
        if op == "kick_user":
            self.kick([c.sid for c in self.connections() if c.user_id == operation["user_id"]])
        elif op == "kick_family":
            self.kick([c.sid for c in self.connections() if c.family == operation["family"]])
        elif op in ("join", "leave"):
            for sid in self.sids_for_user(operation["user_id"]):
                for room in operation["rooms"]:
                    if op == "join":
                        self.server.enter_room(sid, room, namespace=NAMESPACE)
                    else:
                        self.server.leave_room(sid, room, namespace=NAMESPACE)

    def kick(self, sids):
        for sid in sids:
            try:
                # Local sids only: the disconnect handler runs here and forgets the socket.
                self.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
            except Exception:
                log.exception("Could not disconnect socket %s", sid)
            self.remove(sid)  # in case the disconnect handler did not run (socket already gone)

    # -- presence ---------------------------------------------------------------------------------------------------

    def announce(self, connection, online):
        """Tell the user's conversation partners that they came online / went offline (in this process)."""
        rooms = connection.conversation_rooms
        if rooms:
            self.server.emit(
                "presence",
                {"user_id": connection.user_id, "online": online},
                to=rooms,
                skip_sid=self.sids_for_user(connection.user_id) or connection.sid,
            )

    # -- background tasks -------------------------------------------------------------------------------------------

    def _rooms(self, connections, prefix):
        """`{user_id: ids}` of the `<prefix><id>` rooms (`task:`, `department:`) the connections' sockets are in."""
        ids = defaultdict(set)
        for connection in connections:
            for room in self.server.manager.get_rooms(connection.sid, NAMESPACE):
                if room.startswith(prefix):
                    ids[connection.user_id].add(room.removeprefix(prefix))
        return ids

    def _watch(self):
        """Every `interval` seconds drop the sockets whose sign-in was ended, whose credentials changed, or whose
        account is gone or inactive, and take sockets out of the task rooms of tasks their user may no longer read
        (a project turned private, a membership ended): a task's room carries its events and chat; and out of the
        rooms of helpdesk departments their user no longer works in (the removal's own leave was lost): a
        department's room carries its tickets' staff view.

        Runs while this process holds sockets; the first connect starts it again.
        """
        from finstack.realtime import service

        while True:
            self.server.sleep(self.interval)
            with self._lock:
                if not self._connections:
                    self._watching = False
                    return
                connections = list(self._connections.values())
            try:
                with self.app.app_context():
                    ended = service.ended_sessions({c.session for c in connections})
                    task_rooms = self._rooms(connections, TASK_PREFIX)
                    unreadable = service.unreadable_tasks(task_rooms) if task_rooms else {}
                    department_rooms = self._rooms(connections, DEPARTMENT_PREFIX)
                    left = service.departments_left(department_rooms) if department_rooms else {}
            except Exception:
                log.exception("Socket session re-check failed; trying again")
                continue
            self.kick([c.sid for c in connections if c.session in ended])
            for connection in connections:
                for task_id in unreadable.get(connection.user_id, ()):
                    self.server.leave_room(connection.sid, TASK_PREFIX + task_id, namespace=NAMESPACE)
                for department_id in left.get(connection.user_id, ()):
                    self.server.leave_room(connection.sid, DEPARTMENT_PREFIX + department_id, namespace=NAMESPACE)

    def _client(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def _listen(self):
        """Apply the operations other processes publish (kicks, room changes) to this process's sockets."""
        import redis

        delay = 1
        while True:
            try:
                pubsub = redis.Redis.from_url(self.redis_url).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                delay = 1
                for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    operation = json.loads(message["data"])
                    if operation.get("host_id") != self.host_id:
                        self.apply(operation)
            except Exception:
                log.exception("Control channel %s failed; reconnecting in %s s", self.channel, delay)
                self.server.sleep(delay)
                delay = min(delay * 2, 30)
