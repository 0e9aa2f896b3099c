"""Socket.IO fan-out under the real server: 1,000 connected clients, a 200-member group, delivery latency and rate.

    python bench/socket_fanout.py                          # 1 gunicorn process, 1,000 clients, 200-member group
    python bench/socket_fanout.py --processes 2            # 2 processes joined by Redis (REDIS_URL), clients split
    python bench/socket_fanout.py --blocking-psycopg2      # the same server with psycopg2 blocking, for contrast

It creates the PostgreSQL database if missing (default finstack_socket_bench), migrates it, seeds --clients users
(reused on later runs) and a fresh --members-member group, starts the real server (`gunicorn -c gunicorn.conf.py
app:app`: eventlet worker, cooperative psycopg2, FINSTACK_ENV=production) on free ports, connects every client over
WebSocket (python-socketio's AsyncClient on aiohttp, all in this one process) and measures:

* paced:  --paced messages at --rate per second into the group, one sender; each of the members' sockets (the
          sender's included) timestamps the `chat_message` it receives: p50 / p99 delivery latency;
* burst:  --senders members send --burst messages each, back to back (each waits for its ack): deliveries per second
          in total and per server process, p50 / p99 latency under that load;
* slow query: a PostgreSQL session holds the row lock of another conversation in a loop of
          `BEGIN; SELECT … FOR UPDATE; SELECT pg_sleep(1); COMMIT`, while a client keeps sending into that
          conversation: each of its sends waits ~1 s inside PostgreSQL (`UPDATE conversations …` behind the lock).
          Meanwhile the group gets paced messages and a prober hits GET /api/health every 50 ms: their latencies
          beside the same figures with no slow query show whether one slow query delays anyone else.

Client and server share the machine (2 cores here): the figures include the client's own decoding of 200 copies of
each message. It prints figures and never judges them; every loop is bounded and the servers are stopped at the end.
"""

import argparse
import asyncio
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg2
import socketio
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finstack import create_app  # noqa: E402
from finstack.extensions import db  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_socket_bench"
USER_PREFIX = "sockbench"
CONNECT_BATCH = 50
BLOCKING_CONFIG = ROOT / "bench" / "gunicorn_blocking_psycopg2.conf.py"


def log(message):
    print(message, file=sys.stderr, flush=True)


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


def ms(values):
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values) * 1000:7.1f} ms   p99 {percentile(values, 0.99) * 1000:7.1f} ms"


def cpu_seconds(pid):
    """User + system CPU seconds of a process and its children (the gunicorn master and its worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for each in pids:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- database and seed ------------------------------------------------------------------------------------------


def ensure_database(url):
    parsed = sa.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}):
            log(f"Creating database {parsed.database}")
            connection.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def seed(app, clients, members):
    """Users sockbench0001…, a fresh group of the first `members`, a DM between the last two; returns tokens."""
    from flask_jwt_extended import create_access_token
    from flask_migrate import upgrade

    from finstack.chat import conversations
    from finstack.core.time import utcnow
    from finstack.users.models import User

    with app.app_context():
        upgrade()
        names = [f"{USER_PREFIX}{number:05d}" for number in range(1, clients + 1)]
        existing = set(db.session.scalars(sa.select(User.username).where(User.username.in_(names))))
        missing = [name for name in names if name not in existing]
        if missing:
            log(f"Seeding {len(missing)} users")
            probe = User()
            probe.set_password(secrets.token_hex(8), "pbkdf2:sha256:1000")
            now = utcnow()
            db.session.execute(
                sa.insert(User),
                [
                    {
                        "id": uuid.uuid4(),
                        "username": name,
                        "email": f"{name}@bench.example",
                        "password_hash": probe.password_hash,
                        "full_name": f"Bench {name[-5:]}",
                        "role": "member",
                        "is_active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for name in missing
                ],
            )
            db.session.commit()
        by_name = {user.username: user for user in db.session.scalars(sa.select(User).where(User.username.in_(names)))}
        people = [by_name[name] for name in names]
        group, _ = conversations.create_conversation(
            people[0],
            participant_ids=[user.id for user in people[1:members]],
            is_group=True,
            name=f"Bench {time.strftime('%H:%M:%S')}",
        )
        side, _ = conversations.create_conversation(people[-2], participant_ids=[people[-1].id])
        tokens = [create_access_token(identity=str(user.id)) for user in people]
        return tokens, str(group.id), str(side.id)


# --- servers ----------------------------------------------------------------------------------------------------


def start_servers(count, database_url, secrets_env, redis_url, config, logdir, worker_connections=3000):
    servers = []
    for index in range(count):
        port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in ("SOCKETIO_ASYNC_MODE", "BIND")}
        env.update(
            FINSTACK_ENV="production",
            DATABASE_URL=database_url,
            HOST="127.0.0.1",
            PORT=str(port),
            WORKER_CONNECTIONS=str(worker_connections),
            LOG_LEVEL="warning",
            **secrets_env,
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        else:
            env.pop("REDIS_URL", None)
        log_path = Path(logdir) / f"server-{index}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(config), "app:app"],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        servers.append((process, f"http://127.0.0.1:{port}", log_path))
    return servers


async def wait_healthy(servers, timeout=60):
    async with aiohttp.ClientSession() as session:
        for process, url, log_path in servers:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"server exited:\n{log_path.read_text()}")
                try:
                    async with session.get(f"{url}/api/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server {url} did not start:\n{log_path.read_text()}")
                await asyncio.sleep(0.2)


# --- clients ----------------------------------------------------------------------------------------------------


class Recorder:
    """Delivery timestamps of the current phase: (latency, process index, arrival time)."""

    def __init__(self):
        self.phase = None
        self.deliveries = []

    def start(self, phase):
        self.phase = phase
        self.deliveries = []

    def handler(self, process_index):
        async def on_chat_message(message):
            parts = message.get("content", "").split()
            if len(parts) == 4 and parts[0] == "bench" and parts[1] == self.phase:
                now = time.time()
                self.deliveries.append((now - float(parts[3]), process_index, now))

        return on_chat_message


async def connect_all(tokens, urls, recorder):
    clients = [None] * len(tokens)

    async def connect(index):
        client = socketio.AsyncClient(reconnection=False)
        process_index = index % len(urls)
        client.on("chat_message", recorder.handler(process_index))
        await client.connect(
            urls[process_index], auth={"token": tokens[index]}, transports=["websocket"], wait_timeout=30
        )
        clients[index] = client

    started = time.monotonic()
    for start in range(0, len(tokens), CONNECT_BATCH):
        await asyncio.gather(*(connect(index) for index in range(start, min(start + CONNECT_BATCH, len(tokens)))))
    log(f"Connected {len(tokens)} clients in {time.monotonic() - started:.1f} s")
    return clients


def content(phase, sequence):
    return f"bench {phase} {sequence} {time.time():.6f}"


async def send(client, conversation_id, text):
    ack = await client.call(
        "send_message",
        {"conversation_id": conversation_id, "content": text, "client_id": uuid.uuid4().hex},
        timeout=60,
    )
    if "error" in ack:
        raise SystemExit(f"send_message failed: {ack}")
    return ack


async def settle(recorder, expected, timeout=30):
    deadline = time.monotonic() + timeout
    while len(recorder.deliveries) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def paced(client, group_id, recorder, phase, count, rate, members):
    recorder.start(phase)
    for sequence in range(count):
        started = time.monotonic()
        await send(client, group_id, content(phase, sequence))
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    await settle(recorder, count * members)
    return [latency for latency, _, _ in recorder.deliveries]


async def burst(senders, group_id, recorder, count, members):
    recorder.start("burst")
    started = time.time()

    async def run(client, offset):
        for sequence in range(count):
            await send(client, group_id, content("burst", offset * count + sequence))

    await asyncio.gather(*(run(client, offset) for offset, client in enumerate(senders)))
    await settle(recorder, count * len(senders) * members, timeout=120)
    return started, list(recorder.deliveries)


async def probe_health(url, stop, samples):
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.monotonic()
            async with session.get(f"{url}/api/health") as response:
                await response.read()
            samples.append(time.monotonic() - started)
            await asyncio.sleep(0.05)


def hold_lock_with_pg_sleep(database_url, conversation_id, stop):
    """Another session keeps the conversation's row locked for 1 s at a time (pg_sleep(1) inside the lock)."""
    connection = psycopg2.connect(sa.make_url(database_url).render_as_string(hide_password=False))
    try:
        with connection.cursor() as cursor:
            while not stop.is_set():
                cursor.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,))
                cursor.execute("SELECT pg_sleep(1)")
                connection.commit()
                time.sleep(0.01)
    finally:
        connection.close()


async def slow_query_phase(args, clients, urls, group_id, side_id, recorder, with_slow):
    phase = "slow" if with_slow else "calm"
    stop, lock_stop = asyncio.Event(), threading.Event()
    health = []
    slow_acks = []
    prober = asyncio.create_task(probe_health(urls[0], stop, health))
    holder = threading.Thread(target=hold_lock_with_pg_sleep, args=(args.database_url, side_id, lock_stop), daemon=True)

    async def slow_sender():
        while not stop.is_set():
            started = time.monotonic()
            await send(clients[-2], side_id, content("side", len(slow_acks)))
            slow_acks.append(time.monotonic() - started)

    slow_task = None
    if with_slow:
        holder.start()
        await asyncio.sleep(0.2)
        slow_task = asyncio.create_task(slow_sender())
    latencies = await paced(clients[0], group_id, recorder, phase, args.paced, args.rate, args.members)
    stop.set()
    lock_stop.set()
    await prober
    if slow_task is not None:
        await asyncio.wait_for(slow_task, timeout=30)
        holder.join(timeout=5)
    return latencies, health, slow_acks


# --- main -------------------------------------------------------------------------------------------------------


async def run(args, tokens, group_id, side_id, urls, server_pids):
    recorder = Recorder()
    clients = await connect_all(tokens, urls, recorder)
    await asyncio.sleep(2)  # presence announcements of 1,000 connects die down
    try:
        results = {}
        log(f"Paced: {args.paced} messages at {args.rate}/s")
        results["paced"] = await paced(clients[0], group_id, recorder, "paced", args.paced, args.rate, args.members)
        log(f"Burst: {args.senders} senders x {args.burst} messages")
        server_cpu, client_cpu, wall = sum(map(cpu_seconds, server_pids)), time.process_time(), time.monotonic()
        results["burst"] = await burst(clients[: args.senders], group_id, recorder, args.burst, args.members)
        results["burst_cpu"] = (
            sum(map(cpu_seconds, server_pids)) - server_cpu,
            time.process_time() - client_cpu,
            time.monotonic() - wall,
        )
        log("Calm: paced messages and /api/health probes, no slow query")
        results["calm"] = await slow_query_phase(args, clients, urls, group_id, side_id, recorder, False)
        log("Slow query: the same, while another conversation's sends wait 1 s on a pg_sleep(1) lock")
        results["slow"] = await slow_query_phase(args, clients, urls, group_id, side_id, recorder, True)
        return results
    finally:
        await asyncio.gather(*(client.disconnect() for client in clients if client is not None))


def report(args, results, processes):
    expected_per_message = args.members
    paced = results["paced"]
    started, deliveries = results["burst"]
    burst_latencies = [latency for latency, _, _ in deliveries]
    elapsed = max(arrival for _, _, arrival in deliveries) - started if deliveries else float("nan")
    per_process = [sum(1 for _, index, _ in deliveries if index == p) for p in range(processes)]
    server_cpu, client_cpu, wall = results["burst_cpu"]
    calm_latency, calm_health, _ = results["calm"]
    slow_latency, slow_health, slow_acks = results["slow"]
    mode = (
        "psycopg2 BLOCKING (bench/gunicorn_blocking_psycopg2.conf.py)"
        if args.blocking_psycopg2
        else "gunicorn.conf.py (eventlet, cooperative psycopg2)"
    )
    lines = [
        f"Server: {processes} x gunicorn -k eventlet -w 1, {mode}, PostgreSQL"
        + (", Redis message queue" if processes > 1 else ""),
        f"Clients: {args.clients} connected (WebSocket, python-socketio AsyncClient), group of {args.members}",
        "",
        f"paced   {args.paced} msgs at {args.rate}/s   deliveries {len(paced)}/{args.paced * expected_per_message}"
        f"   latency {ms(paced)}",
        f"burst   {args.senders} senders x {args.burst} msgs   deliveries {len(deliveries)}/"
        f"{args.senders * args.burst * expected_per_message} in {elapsed:.2f} s = {len(deliveries) / elapsed:,.0f}/s",
        f"        per process: {', '.join(f'{count / elapsed:,.0f}/s' for count in per_process)}"
        f"   latency {ms(burst_latencies)}",
        f"        CPU over the burst's {wall:.1f} s: server processes {server_cpu:.1f} s"
        f" ({server_cpu / max(len(deliveries), 1) * 1e6:.0f} µs per delivery), this client {client_cpu:.1f} s",
        "",
        f"no slow query     group delivery {ms(calm_latency)}   /api/health {ms(calm_health)}",
        f"with slow query   group delivery {ms(slow_latency)}   /api/health {ms(slow_health)}",
        f"                  the slow conversation's sends: {len(slow_acks)}, ack {ms(slow_acks)}",
    ]
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--paced", type=int, default=100, help="messages in the paced phases")
    parser.add_argument("--rate", type=float, default=10, help="paced messages per second")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--burst", type=int, default=50, help="messages per sender in the burst")
    parser.add_argument("--processes", type=int, default=1, help="gunicorn processes; more than 1 needs Redis")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--blocking-psycopg2", action="store_true", help="serve with psycopg2 blocking the worker (contrast)"
    )
    args = parser.parse_args()
    if args.members > args.clients - 2:
        parser.error("--members must leave two clients outside the group (the slow conversation)")

    secrets_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    ensure_database(args.database_url)
    app = create_app(
        {"FINSTACK_ENV": "production", "SQLALCHEMY_DATABASE_URI": args.database_url, "REDIS_URL": None, **secrets_env}
    )
    tokens, group_id, side_id = seed(app, args.clients, args.members)
    config = BLOCKING_CONFIG if args.blocking_psycopg2 else ROOT / "gunicorn.conf.py"
    redis_url = args.redis_url if args.processes > 1 else None
    with tempfile.TemporaryDirectory() as logdir:
        servers = start_servers(args.processes, args.database_url, secrets_env, redis_url, config, logdir)
        try:
            asyncio.run(wait_healthy(servers))
            urls = [url for _, url, _ in servers]
            server_pids = [process.pid for process, _, _ in servers]
            results = asyncio.run(run(args, tokens, group_id, side_id, urls, server_pids))
        finally:
            for process, _, _ in servers:
                process.terminate()
            for process, _, log_path in servers:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                # eventlet reports every client that closes first as "socket shutdown error": noise, not failure.
                text = log_path.read_text().replace("socket shutdown error", "\n")
                errors = [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]
                if errors:
                    log(f"server log ({log_path.name}): {len(errors)} errors, last ones:\n" + "\n".join(errors[-5:]))
    report(args, results, args.processes)


if __name__ == "__main__":
    main()
