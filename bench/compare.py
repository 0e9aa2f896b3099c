"""FinStack's default task list against a FastAPI peer, a bare Flask endpoint and its own raw SQL (issue 12 item 7).

    python -m venv bench/.peers-venv && bench/.peers-venv/bin/pip install -r bench/peers/requirements.txt
    python bench/compare.py --tasks 100000

Seeds the bench database as bench/api_latency.py does (same code: reused when the count matches), then starts, each
on a free port:

* FinStack: `gunicorn -k eventlet -w 1 -c gunicorn.conf.py app:app`, production config, rate limits off (on with
  `--rate-limits`: every request counted, against a budget no run reaches);
  `GET /api/tasks?page=1&per_page=20` as the demo manager;
* the peer (bench/peers/fastapi_items): the FastAPI full-stack template's items list on the same `tasks` and `users`
  rows, `uvicorn` with 1 worker (uvloop, httptools) from the peers venv; `GET /api/v1/items/?skip=0&limit=20` with a
  JWT for the same manager;
* bare Flask (bench/peers/bare_flask.py): the same JSON as FinStack's from one SQL statement, no auth, served like
  FinStack by `gunicorn -k eventlet -w 1`;
* raw SQL: the statements FinStack's list service sends for that page (captured as api_latency.py does), replayed
  over psycopg2, one connection per client; no HTTP, no authentication.

It checks that they answer alike (the bare JSON equals FinStack's, the peer pages the same ids), then runs rounds of
--duration seconds per variant at each --concurrency (keep-alive client threads), interleaved: FinStack, peer, bare,
raw SQL, then the reverse order, and so on for --rounds rounds. Per variant: req/s (all rounds; each round's in
brackets), p50 / p99 latency under that load, and CPU per request of the app server (user + system time of the
server process and its children from /proc/<pid>/stat, before and after each round; each client's first request,
made before the clock starts, is inside that window and counted) and of PostgreSQL (the backends connected to the
bench database, sampled every 0.1 s through the round, so connections opened and closed by a pool count up to their
last sample). It prints Markdown tables with the ratios and the load average, and judges nothing. The machine's
other work shows in every figure: read them beside the load average. The peers venv is found at bench/.peers-venv,
or --peers-venv / PEERS_VENV.
"""

import collections
import contextlib
import functools
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import jwt
import psycopg2
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import api_latency  # noqa: E402

FINSTACK_PATH = "/api/tasks?page=1&per_page=20"
PEER_PATH = "/api/v1/items/?skip=0&limit=20"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- CPU time from /proc --------------------------------------------------------------------------------------


def _stat(pid):
    """(parent pid, user + system CPU seconds) of a process."""
    with open(f"/proc/{pid}/stat") as file:
        text = file.read()
    fields = text[text.rindex(")") + 2 :].split()  # the name in brackets may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu(root):
    """CPU seconds used so far by process `root` and its descendants (gunicorn's master and worker)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stats[int(entry)] = _stat(entry)
    children = collections.defaultdict(list)
    for pid, (parent, _) in stats.items():
        children[parent].append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(children[pid])
    return total


class BackendCpu:
    """CPU seconds of the PostgreSQL backends connected to the bench database during a `with` block. They are
    sampled every `interval` seconds, so a backend that connects and exits inside the block (a pool's overflow
    connection, a client's own connection) counts up to its last sample; the sampler's own backend is left out."""

    def __init__(self, url, interval=0.1):
        self.url, self.interval = url, interval
        self.seconds = 0.0

    def _sample(self, cursor):
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        for (pid,) in cursor.fetchall():
            with contextlib.suppress(OSError):
                self.last[pid] = _stat(pid)[1]

    def _run(self, cursor):
        while not self.done.wait(self.interval):
            self._sample(cursor)

    def __enter__(self):
        self.connection = psycopg2.connect(self.url)
        self.connection.autocommit = True
        self.cursor = self.connection.cursor()
        self.last = {}
        self._sample(self.cursor)
        self.first = dict(self.last)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(self.cursor,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join()
        self._sample(self.cursor)
        self.connection.close()
        self.seconds = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


# --- the four variants ----------------------------------------------------------------------------------------


def find_peers_venv(given):
    venv = Path(given or os.environ.get("PEERS_VENV") or ROOT / "bench" / ".peers-venv")
    if not (venv / "bin" / "uvicorn").exists():
        raise SystemExit(
            f"no uvicorn in {venv}: python -m venv bench/.peers-venv && "
            "bench/.peers-venv/bin/pip install -r bench/peers/requirements.txt (or --peers-venv DIR)"
        )
    return venv


def start_peer(url, venv, secret, log_file):
    env = dict(os.environ)
    env.update(PEER_DATABASE_URL=sa.make_url(url).set(drivername="postgresql+psycopg").render_as_string(False))
    env.update(PEER_SECRET_KEY=secret)
    command = [str(venv / "bin" / "uvicorn"), "--app-dir", "bench/peers", "fastapi_items.app:app"]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    return api_latency.launch(
        "uvicorn",
        lambda port: [*command, "--port", str(port)],
        env,
        log_file,
        "/api/v1/utils/health-check/",
    )


def start_bare(url, log_file):
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-k", "eventlet", "-w", "1", "--pythonpath", "bench/peers", "bare_flask:app"]
    env = {**os.environ, "BARE_DATABASE_URL": url}
    return api_latency.launch("bare Flask", lambda port: [*command, "-b", f"127.0.0.1:{port}"], env, log_file)


def peer_token(url, secret):
    """What the template's login would hand the demo manager: HS256, `sub` = the user's id."""
    with contextlib.closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM users WHERE username = %s", (api_latency.MANAGER,))
        (user_id,) = cursor.fetchone()
    return jwt.encode({"sub": str(user_id), "exp": int(time.time()) + 86_400}, secret, algorithm="HS256")


def replay(url, statements):
    """One psycopg2 connection; each call runs the list's statements and fetches every row (the raw SQL client)."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    cursor = connection.cursor()

    def request():
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()

    return request


def http_client(port, token, path):
    return functools.partial(api_latency.Client(port, token).get_ok, path)


def check_answers(finstack, peer, bare):
    """Lines saying whether the three apps answer alike (the figures mean little otherwise)."""
    finstack, peer, bare = json.loads(finstack), json.loads(peer), json.loads(bare)
    lines = []
    fin_page, bare_page = finstack["pagination"], bare["pagination"]
    same_envelope = (
        fin_page["total_exact"] == bare_page["total_exact"] and fin_page["next_cursor"] == bare_page["next_cursor"]
    )
    if fin_page["total_exact"]:
        same_envelope = same_envelope and fin_page["total"] == bare_page["total"]
    same_items = finstack["items"] == bare["items"]
    lines.append(
        f"bare Flask answers FinStack's JSON: items {'identical' if same_items else 'DIFFERENT'}, pagination "
        f"{'identical' if same_envelope else 'DIFFERENT'} (totals: {fin_page['total']} / {bare_page['total']}, "
        f"exact: {fin_page['total_exact']})"
    )
    fin_ids = [item["id"] for item in finstack["items"]]
    peer_ids = [item["id"] for item in peer["data"]]
    lines.append(
        f"peer pages {'the same' if fin_ids == peer_ids else 'OTHER'} {len(peer_ids)} task ids; its count "
        f"{peer['count']} (exact, whole table) against FinStack's total {fin_page['total']}"
    )
    return lines


# --- measuring ------------------------------------------------------------------------------------------------


def measure(url, variants, concurrency, rounds, duration):
    """Interleaved rounds: every variant once per round, in reverse order every other round."""
    results = {}
    for clients in concurrency:
        per_variant = {
            name: {"rps": [], "latencies": [], "requests": 0, "cpu": 0.0 if pid else None, "db": 0.0}
            for name, (_, pid) in variants.items()
        }
        for index in range(rounds):
            order = list(variants) if index % 2 == 0 else list(reversed(variants))
            for name in order:
                open_client, pid = variants[name]
                api_latency.log(f"c={clients} round {index + 1}/{rounds}: {name}")
                cpu_before = tree_cpu(pid) if pid else 0.0
                with BackendCpu(url) as database:
                    rps, latencies = api_latency.run_clients(open_client, clients, duration)
                result = per_variant[name]
                if pid:
                    result["cpu"] += tree_cpu(pid) - cpu_before
                result["db"] += database.seconds
                result["rps"].append(rps)
                result["latencies"].extend(latencies)
                result["requests"] += len(latencies) + clients  # each client's first request is in the CPU window
        results[clients] = (per_variant, os.getloadavg())
    return results


def print_tables(args, results, servers, checks, loads_at_start):
    print(
        f"\n{args.tasks:,} tasks; {os.cpu_count()} CPUs; {args.rounds} interleaved rounds of {args.duration:g} s ",
        end="",
    )
    print(f"per variant and concurrency; load average (1 min) at start: {loads_at_start[0]:.1f}")
    for line in (*servers, *checks):
        print(f"- {line}")
    for clients, (per_variant, loads) in results.items():
        print(f"\nconcurrency {clients} (load average at the end: {' / '.join(f'{load:.1f}' for load in loads)})\n")
        print("| variant | req/s (each round) | p50 ms | p99 ms | app CPU ms/req | PostgreSQL CPU ms/req |")
        print("|---|---|---|---|---|---|")
        figures = {}
        for name, result in per_variant.items():
            latencies = result["latencies"]
            rps = statistics.mean(result["rps"])
            cpu = None if result["cpu"] is None else result["cpu"] * 1000 / result["requests"]
            figures[name] = {"rps": rps, "cpu": cpu}
            rounds = ", ".join(f"{value:.0f}" for value in result["rps"])
            print(
                f"| {name} | {rps:.1f} ({rounds}) | {statistics.median(latencies) * 1000:.1f} "
                f"| {api_latency.percentile(latencies, 0.99) * 1000:.1f} | {'—' if cpu is None else f'{cpu:.2f}'} "
                f"| {result['db'] * 1000 / result['requests']:.2f} |"
            )
        fin = figures["FinStack"]
        print("\n| ratio | FinStack/peer | FinStack/bare Flask | FinStack/raw SQL |")
        print("|---|---|---|---|")
        print(
            f"| req/s | {fin['rps'] / figures['peer']['rps']:.2f} | {fin['rps'] / figures['bare Flask']['rps']:.2f} "
            f"| {fin['rps'] / figures['raw SQL']['rps']:.2f} |"
        )
        print(
            f"| app CPU per request | {fin['cpu'] / figures['peer']['cpu']:.2f} "
            f"| {fin['cpu'] / figures['bare Flask']['cpu']:.2f} | — |"
        )


def main():
    parser = api_latency.seeding_parser(__doc__)
    parser.add_argument("--concurrency", default="8,32", help="comma-separated client counts (default 8,32)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per variant and round (default 10)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per variant (default 20)")
    parser.add_argument("--peers-venv", help="venv with bench/peers/requirements.txt (default bench/.peers-venv)")
    parser.add_argument("--rate-limits", action="store_true", help="FinStack with its rate limits on (production's)")
    args = parser.parse_args()
    concurrency = [int(value) for value in args.concurrency.split(",") if value.strip()]
    venv = find_peers_venv(args.peers_venv)

    loads_at_start = os.getloadavg()
    secret_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    api_latency.ensure_database(args.url)
    app = api_latency.make_bench_app(args.url, secret_env)
    if api_latency.migrate_and_seed(app, args.tasks, args.users, args.seed) is not None:
        api_latency.log("VACUUM ANALYZE")
        api_latency.vacuum_analyze(args.url)
    statements = api_latency.capture_sql(app, {"list": FINSTACK_PATH})["list"]
    peer_secret = secrets.token_hex(32)

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(
            tempfile.NamedTemporaryFile("w+b", prefix="finstack-compare-", suffix=".log", delete=False)
        )
        servers = {}
        for name, start in (
            ("FinStack", lambda: api_latency.start_server(args.url, secret_env, out, args.rate_limits)),
            ("peer", lambda: start_peer(args.url, venv, peer_secret, out)),
            ("bare Flask", lambda: start_bare(args.url, out)),
        ):
            process, port = start()
            stack.callback(api_latency.stop_server, process)
            servers[name] = (process, port)
        token = api_latency.login(servers["FinStack"][1])
        clients = {
            "FinStack": functools.partial(http_client, servers["FinStack"][1], token, FINSTACK_PATH),
            "peer": functools.partial(http_client, servers["peer"][1], peer_token(args.url, peer_secret), PEER_PATH),
            "bare Flask": functools.partial(http_client, servers["bare Flask"][1], None, FINSTACK_PATH),
            "raw SQL": functools.partial(replay, args.url, statements),
        }
        answers = {name: open_client()() for name, open_client in clients.items() if name != "raw SQL"}
        checks = check_answers(answers["FinStack"], answers["peer"], answers["bare Flask"])
        for line in checks:
            api_latency.log(line)
        for open_client in clients.values():
            request = open_client()
            for _ in range(args.warmup):
                request()
        variants = {
            name: (open_client, servers[name][0].pid if name in servers else None)
            for name, open_client in clients.items()
        }
        results = measure(args.url, variants, concurrency, args.rounds, args.duration)
    os.unlink(out.name)

    server_lines = [
        "FinStack: gunicorn -k eventlet -w 1 -c gunicorn.conf.py (production config, rate limits "
        + ("on" if args.rate_limits else "off")
        + "), GET "
        + FINSTACK_PATH,
        "peer: FastAPI + SQLModel (bench/peers/fastapi_items), uvicorn 1 worker (uvloop, httptools; the sync route "
        "runs in its thread pool), GET " + PEER_PATH,
        "bare Flask: bench/peers/bare_flask.py, gunicorn -k eventlet -w 1, one SQL statement, no auth",
        f"raw SQL: FinStack's {len(statements)} statements for the page over psycopg2, one connection per client",
    ]
    print_tables(args, results, server_lines, checks, loads_at_start)


if __name__ == "__main__":
    main()
