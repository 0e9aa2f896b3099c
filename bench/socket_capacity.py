"""Idle Socket.IO connections one server process holds, and the memory each costs.

    python bench/socket_capacity.py                       # up to 10,000 sockets in steps of 1,000
    python bench/socket_capacity.py --clients 5000 --step 500

One real server process (`gunicorn -c gunicorn.conf.py app:app`: one eventlet worker, FINSTACK_ENV=production,
WORKER_CONNECTIONS raised above --clients) on PostgreSQL; --clients users (sockbench…, shared with
bench/socket_fanout.py) connect over WebSocket with their JWT, --step at a time, from python-socketio AsyncClients
in this one process. After each step and a settle pause it reads the worker's resident memory (VmRSS in
/proc/<pid>/status) and reports the growth per connected socket; at the end it measures the server's CPU over
--idle seconds with every socket connected and idle (engine.io pings, the registry's access watch), and checks the
server still answers GET /api/health and delivers a message to a connected member.

Client and server share the machine. Prints figures; asserts nothing about time.
"""

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from socket_fanout import (
    DEFAULT_URL,
    ROOT,
    Recorder,
    connect_all,
    cpu_seconds,
    ensure_database,
    log,
    seed,
    send,
    start_servers,
    wait_healthy,
)

from finstack import create_app

GROUP_MEMBERS = 10  # a small group: its members' presence goes to each other, not to thousands


def worker_pid(master_pid):
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return int(children[0])


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def health_ms(url):
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(f"{url}/api/health") as response:
            assert response.status == 200
        return (time.perf_counter() - started) * 1000


async def run(args, tokens, group_id, url, master_pid):
    worker = worker_pid(master_pid)
    await asyncio.sleep(args.settle)
    rows = [(0, rss_kib(worker), 0.0)]
    clients, recorder = [], Recorder()
    try:
        for start in range(0, len(tokens), args.step):
            began = time.monotonic()
            clients += await connect_all(tokens[start : start + args.step], [url], recorder)
            elapsed = time.monotonic() - began
            await asyncio.sleep(args.settle)
            rows.append((len(clients), rss_kib(worker), elapsed))
            log(f"{len(clients)} sockets: RSS {rows[-1][1] / 1024:.1f} MiB")
        cpu_before, wall = cpu_seconds(master_pid), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_cpu = (cpu_seconds(master_pid) - cpu_before) / (time.monotonic() - wall)
        health = await health_ms(url)
        recorder.start("alive")
        await send(clients[0], group_id, f"bench alive 0 {time.time():.6f}")
        deadline = time.monotonic() + 30
        while len(recorder.deliveries) < GROUP_MEMBERS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return rows, idle_cpu, health, len(recorder.deliveries)
    finally:
        await asyncio.gather(*(client.disconnect() for client in clients))


def report(args, rows, idle_cpu, health, delivered):
    base = rows[0][1]
    print("Server: 1 x gunicorn -k eventlet -w 1 (gunicorn.conf.py), FINSTACK_ENV=production, PostgreSQL")
    print(f"Load average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print()
    print("| sockets | worker RSS | growth since 0 | per socket | connect time of the step |")
    print("|---|---|---|---|---|")
    for count, rss, elapsed in rows:
        per = f"{(rss - base) / count:.1f} KiB" if count else "-"
        step = f"{elapsed:.1f} s" if count else "-"
        print(f"| {count:,} | {rss / 1024:.1f} MiB | {(rss - base) / 1024:.1f} MiB | {per} | {step} |")
    print()
    print(f"Idle, {rows[-1][0]:,} sockets for {args.idle:.0f} s: server CPU {idle_cpu * 100:.1f}% of one core")
    print(f"Then GET /api/health {health:.1f} ms; a group message reached {delivered}/{GROUP_MEMBERS} members")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=3, help="seconds to wait before reading memory")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle CPU measured at the end")
    args = parser.parse_args()

    secrets_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    ensure_database(args.database_url)
    app = create_app(
        {"FINSTACK_ENV": "production", "SQLALCHEMY_DATABASE_URI": args.database_url, "REDIS_URL": None, **secrets_env}
    )
    tokens, group_id, _ = seed(app, args.clients, GROUP_MEMBERS)
    with tempfile.TemporaryDirectory() as logdir:
        (process, url, _), *_ = start_servers(
            1, args.database_url, secrets_env, None, ROOT / "gunicorn.conf.py", logdir, args.clients + 1000
        )
        try:
            asyncio.run(wait_healthy([(process, url, Path(logdir) / "server-0.log")]))
            rows, idle_cpu, health, delivered = asyncio.run(run(args, tokens, group_id, url, process.pid))
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(args, rows, idle_cpu, health, delivered)


if __name__ == "__main__":
    main()
