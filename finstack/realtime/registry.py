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


@dataclass
class ReplayGate:
    """A replaying socket: `upto` is the last seq it was sent; live events wait in `held` until the replay ends
    (then `held` is None)."""

    upto: int
    held: list | None = field(default_factory=list)


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
        self._gates = {}  # sid -> ReplayGate, for the sockets that connected with `last_seq`

    # -- bookkeeping -----------------------------------------------------------------------------------------------

    def add(self, connection, last_seq=None):
        """Record a socket; True when it is the user's first in this process (they came online). With `last_seq`
        its live events are held until `replay` has sent it the ones after `last_seq`."""
        with self._lock:
            if last_seq is not None:
                self._gates[connection.sid] = ReplayGate(last_seq)
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
            self._gates.pop(sid, None)
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
        elif op == "events":
            self._deliver(operation)

    def kick(self, sids):
        for sid in sids:
            try:
                # Local sids only: the disconnect handler runs here and forgets the socket.
                self.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
            except Exception:
                log.exception("Could not disconnect socket %s", sid)
            self.remove(sid)  # in case the disconnect handler did not run (socket already gone)

    # -- the per-user event stream ---------------------------------------------------------------------------------

    def _deliver(self, operation):
        """A recorded event: to each recipient's sockets here with their seq, then to the ad-hoc rooms but not to
        those sockets (they have it already)."""
        event, payload = operation["event"], operation["payload"]
        skip = []
        for user_id, seq in operation["seqs"]:
            for sid in self.sids_for_user(user_id):
                skip.append(sid)
                self._send_live(sid, event, {**payload, "seq": seq}, seq)
        if operation["rooms"]:
            self.server.emit(
                event, payload, to=operation["rooms"], skip_sid=skip or None, namespace=NAMESPACE, ignore_queue=True
            )

    def _send_live(self, sid, event, data, seq):
        with self._lock:
            gate = self._gates.get(sid)
            if gate is not None:
                if seq <= gate.upto:
                    return  # replayed already
                if gate.held is not None:
                    gate.held.append((seq, event, data))
                    return
        self.server.emit(event, data, to=sid, namespace=NAMESPACE, ignore_queue=True)

    def replay(self, sid, user_id):
        """Send socket `sid` the events after its `last_seq` from the database, in order, then the live ones held
        meanwhile (those not replayed), then `events_replayed {last_seq}`; live events flow directly after that.
        `events_resync {last_seq}` instead when events after `last_seq` are past retention (reload state: live events
        follow from that seq on). Runs as a background task."""
        from finstack.stream import service

        with self._lock:
            gate = self._gates.get(sid)
        if gate is None:
            return
        try:
            with self.app.app_context():
                user = service.user_for_replay(user_id)
                has_more = user is not None
                while has_more:
                    page = service.events_after(user, since=gate.upto, limit=service.REPLAY_PAGE)
                    if page["resync"]:
                        resync = {"last_seq": page["last_seq"]}
                        self.server.emit("events_resync", resync, to=sid, namespace=NAMESPACE, ignore_queue=True)
                        gate.upto = max(gate.upto, page["last_seq"])
                        break
                    for row in page["events"]:
                        data = {**row.payload, "seq": row.seq}
                        self.server.emit(row.event, data, to=sid, namespace=NAMESPACE, ignore_queue=True)
                    gate.upto = max(gate.upto, page["last_seq"])
                    has_more = page["has_more"]
        except Exception:
            log.exception("Replay to socket %s failed", sid)
        with self._lock:
            held, gate.held = gate.held or [], None
            for seq, event, data in sorted(held, key=lambda item: item[0]):
                if seq > gate.upto:
                    self.server.emit(event, data, to=sid, namespace=NAMESPACE, ignore_queue=True)
                    gate.upto = seq
            self.server.emit("events_replayed", {"last_seq": gate.upto}, to=sid, namespace=NAMESPACE, ignore_queue=True)

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
        """`{user_id: ids}` of the `<prefix><id>` rooms (`task:`, `department:`) the connections' sockets are in.

        One pass over this process's rooms and their members: the manager's `get_rooms(sid)` scans every room for
        one socket, so asking it per socket cost sockets times rooms (93% of an idle server's CPU at 4,000 sockets)."""
        user_of = {connection.sid: connection.user_id for connection in connections}
        manager = self.server.manager
        ids = defaultdict(set)
        for room in list(manager.rooms.get(NAMESPACE, {})):
            if isinstance(room, str) and room.startswith(prefix):
                for sid, _ in manager.get_participants(NAMESPACE, room):
                    if sid in user_of:
                        ids[user_of[sid]].add(room.removeprefix(prefix))
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
