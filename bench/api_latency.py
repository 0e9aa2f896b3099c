"""Latency and throughput of the task list and the dashboard over real HTTP, beside the raw SQL time.

    python bench/api_latency.py --tasks 100000 --users 200
    python bench/api_latency.py --tasks 1000000 --users 200

It creates the database if missing, migrates it, seeds it to exactly --tasks tasks (reusing what is there when the
count already matches, adding when it is short), starts the real server (`gunicorn -k eventlet -w 1 -c
gunicorn.conf.py app:app`, FINSTACK_ENV=production) on a free port, logs in as a demo manager and measures:

* median and p99 latency of --requests sequential requests over one keep-alive connection;
* requests/s with --concurrency keep-alive clients (threads, http.client) for --duration seconds;
* the raw SQL time of the same queries: the statements the service really emits are captured (SQLAlchemy's
  before_cursor_execute) and replayed --requests times straight through psycopg2, summed per request.

It prints figures and never judges them. See bench/README.md.
"""

import argparse
import functools
import http.client
import json
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
import urllib.parse
from pathlib import Path

import psycopg2
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finstack import create_app  # noqa: E402
from finstack.extensions import db  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_bench"
MANAGER = "demo000010"  # every tenth demo user is a manager (finstack/seed/service.py)
ENDPOINTS = {
    "list_filtered": (
        "/api/tasks?status=open&entity_name=acme&sort_by=task_time&sort_order=asc&page=20&per_page=20",
        "GET /api/tasks status=open, entity_name=acme, sort task_time asc, page 20",
    ),
    "list_default": ("/api/tasks?status=open&page=20", "GET /api/tasks status=open, default sort, page 20"),
    "list_search": ("/api/tasks?q=acme+ltd&page=2", "GET /api/tasks q=acme ltd (about 1 task in 126), page 2"),
    "list_search_relevance": (
        "/api/tasks?q=acme+ltd&sort_by=relevance&page=2",
        "GET /api/tasks q=acme ltd, sort_by=relevance, page 2",
    ),
    "dashboard": ("/api/analytics/dashboard", "GET /api/analytics/dashboard (manager: all tasks)"),
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary_ms(seconds):
    return {"median": statistics.median(seconds) * 1000, "p99": percentile(seconds, 0.99) * 1000}


# --- database -------------------------------------------------------------------------------------------------


def ensure_database(url):
    parsed = sa.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        )
        if not exists:
            log(f"Creating database {parsed.database}")
            connection.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def make_bench_app(url, secret_env):
    return create_app({"FINSTACK_ENV": "production", "SQLALCHEMY_DATABASE_URI": url, **secret_env})


def migrate_and_seed(app, task_target, user_target, random_seed):
    """Bring the database to `user_target` demo users and exactly `task_target` tasks; returns seeding seconds."""
    from flask_migrate import upgrade

    from finstack.seed import service as seed
    from finstack.tasks.models import Task
    from finstack.users.models import User

    with app.app_context():
        upgrade()
        rng = seed.make_rng(random_seed)
        demo_users = sa.select(User.id).where(User.username.like("demo%")).order_by(User.username)
        have_users = len(db.session.scalars(demo_users).all())
        if have_users < user_target:
            log(f"Seeding {user_target - have_users} demo users")
            seed.seed_users(user_target - have_users, rng)
        user_ids = db.session.scalars(demo_users).all()

        have_tasks = db.session.scalar(sa.select(sa.func.count()).select_from(Task))
        if have_tasks == task_target:
            log(f"Reusing the {have_tasks} tasks already there")
            return None
        if have_tasks > task_target:
            log(f"{have_tasks} tasks is more than {task_target}: emptying the tasks table")
            db.session.execute(sa.text("TRUNCATE tasks CASCADE"))
            db.session.commit()
            have_tasks = 0
        missing = task_target - have_tasks
        log(f"Seeding {missing} tasks (have {have_tasks})")
        done = 0
        started = time.perf_counter()

        def progress(size):
            nonlocal done
            done += size
            elapsed = time.perf_counter() - started
            if done == missing or done % 100_000 < size:
                log(f"  {done:>10,} tasks  {elapsed:6.1f} s  {done / elapsed:8,.0f} rows/s")

        seed.seed_tasks(missing, user_ids, rng, progress=progress)
        seconds = time.perf_counter() - started
        log(f"Seeded {missing} tasks in {seconds:.1f} s")
        db.engine.dispose()
    return seconds


def vacuum_analyze(url):
    """What autovacuum would do after a bulk load: fresh statistics and visibility map (index-only scans)."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tasks")
        cursor.execute("VACUUM ANALYZE users")
    connection.close()


# --- the SQL the app emits ------------------------------------------------------------------------------------


def capture_sql(app, paths=None):
    """Run the services behind the endpoints (`paths`: name -> request path, ENDPOINTS' by default; a list path is
    `GET /api/tasks?...`) and record every statement they send, with its parameters."""
    from finstack.analytics import service as analytics
    from finstack.tasks import service as tasks
    from finstack.tasks.schemas import TaskListQuery
    from finstack.users.models import User

    captured = {}
    with app.app_context():
        manager = db.session.scalar(sa.select(User).where(User.username == MANAGER))
        if manager is None or manager.role != "manager":
            raise SystemExit(f"{MANAGER} should be a demo manager; seed with --users 10 or more")
        current = []

        def record(conn, cursor, statement, parameters, context, executemany):
            current.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            for name, path in (paths or {name: path for name, (path, _) in ENDPOINTS.items()}).items():
                manager = db.session.get(User, manager.id)  # loaded before the capture, as the request's JWT user is
                current.clear()
                if name == "dashboard":
                    analytics.dashboard(manager, 10)
                else:
                    args = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
                    tasks.list_tasks(manager, TaskListQuery().load(args))
                captured[name] = list(current)
                db.session.rollback()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        db.engine.dispose()
    return captured


def time_raw_sql(url, statements, repeats):
    """Each repeat runs every statement of the request and fetches every row; returns per-repeat totals."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    totals = []
    per_statement = [[] for _ in statements]
    with connection.cursor() as cursor:
        for _ in range(repeats):
            total = 0.0
            for index, (statement, parameters) in enumerate(statements):
                started = time.perf_counter()
                cursor.execute(statement, parameters)
                cursor.fetchall()
                elapsed = time.perf_counter() - started
                per_statement[index].append(elapsed)
                total += elapsed
            totals.append(total)
    connection.close()
    return totals, [summary_ms(values) for values in per_statement]


def explain(url, statements):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    plans = []
    with connection.cursor() as cursor:
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append(
                (cursor.mogrify(statement, parameters).decode(), "\n".join(row[0] for row in cursor.fetchall()))
            )
    connection.close()
    return plans


# --- the real server ------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url, secret_env, log_file, rate_limits=False):
    """FinStack's production server, `gunicorn -k eventlet -w 1 -c gunicorn.conf.py app:app`: (process, port).

    One user sends thousands of requests a minute here, which the default rate limit would answer 429: the limits
    are off, or with `rate_limits` on (counting every request, in memory or in REDIS_URL's Redis as in production)
    with a default budget no bench reaches."""
    env = {key: value for key, value in os.environ.items() if key not in ("BIND", "HOST", "PORT", "GUNICORN_CMD_ARGS")}
    env.update(secret_env, FINSTACK_ENV="production", DATABASE_URL=url, RATELIMIT_ENABLED=str(rate_limits).lower())
    if rate_limits:
        env["DEFAULT_RATE_LIMIT"] = "1000000/minute"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return launch(
        "gunicorn",
        lambda port: [
            str(gunicorn),
            "-k",
            "eventlet",
            "-w",
            "1",
            "-c",
            "gunicorn.conf.py",
            "-b",
            f"127.0.0.1:{port}",
            "app:app",
        ],
        env,
        log_file,
    )


def launch(name, command_for_port, env, log_file, health_path="/api/health"):
    """Start `command_for_port(port)` on a free port from the repository root and wait until `health_path` answers
    200: (process, port)."""
    port = free_port()
    process = subprocess.Popen(command_for_port(port), cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}; see {log_file.name}")
        try:
            status, _ = Client(port).request("GET", health_path)
            if status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"{name} did not become healthy; see {log_file.name}")


def stop_server(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port, token=None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closes a keep-alive connection left idle past gunicorn's `keepalive`: open a new one.
            self.connection.close()
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        payload = response.read()
        return response.status, payload

    def get_ok(self, path):
        status, payload = self.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {payload[:300]!r}")
        return payload


def login(port):
    status, payload = Client(port).request(
        "POST", "/api/auth/login", {"username": MANAGER, "password": "demo-password"}
    )
    if status != 200:
        raise SystemExit(f"login as {MANAGER} answered {status}: {payload[:300]!r}")
    return json.loads(payload)["access_token"]


def sequential(port, token, path, count):
    client = Client(port, token)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        client.get_ok(path)
        timings.append(time.perf_counter() - started)
    return timings


def throughput(port, token, path, clients, duration):
    """Requests/s with `clients` threads, each with its own keep-alive connection, for `duration` seconds."""
    return run_clients(lambda: functools.partial(Client(port, token).get_ok, path), clients, duration)[0]


def run_clients(open_client, clients, duration):
    """`clients` threads, each calling its own `open_client()` (one request per call) for `duration` seconds; the
    first call of each, which opens its connection, is before the clock starts. Returns (requests/s, the seconds of
    every request)."""
    latencies = [[] for _ in range(clients)]
    errors = []
    start = threading.Barrier(clients + 1)
    stop_at = []

    def run(index):
        request = open_client()
        request()
        start.wait()
        timings = latencies[index]
        try:
            while (began := time.perf_counter()) < stop_at[0]:
                request()
                timings.append(time.perf_counter() - began)
        except BaseException as error:  # reported below, never silently lost
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + duration)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"throughput run failed: {errors[0]!r}")
    every = [seconds for timings in latencies for seconds in timings]
    return len(every) / elapsed, every


# --- main -----------------------------------------------------------------------------------------------------


def seeding_parser(description):
    """An argument parser with the options of `migrate_and_seed`: --url, --tasks, --users, --seed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks in the database (default 100000)")
    parser.add_argument("--users", type=int, default=200, help="demo users at least (default 200)")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the demo data")
    return parser


def main():
    parser = seeding_parser(__doc__)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per endpoint (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive clients for req/s (default 8)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of the req/s run (default 10)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per endpoint (default 20)")
    parser.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help="comma-separated subset of: " + ", ".join(ENDPOINTS)
    )
    parser.add_argument("--sql-only", action="store_true", help="skip HTTP: capture and time the SQL only")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of every statement")
    parser.add_argument("--show-sql", action="store_true", help="print the captured SQL with its parameters")
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM ANALYZE after seeding")
    args = parser.parse_args()
    names = [name.strip() for name in args.endpoints.split(",") if name.strip()]
    unknown = set(names) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))}")

    load_before = os.getloadavg()
    secret_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    ensure_database(args.url)
    app = make_bench_app(args.url, secret_env)
    seeding = migrate_and_seed(app, args.tasks, args.users, args.seed)
    if seeding is not None and not args.no_vacuum:
        log("VACUUM ANALYZE")
        vacuum_analyze(args.url)

    captured = capture_sql(app)
    if args.show_sql or args.explain:
        for name in names:
            for sql, plan in explain(args.url, captured[name]):
                print(f"\n-- {name}\n{sql};")
                if args.explain:
                    print(plan)

    results = {}
    for name in names:
        log(f"Raw SQL: {name} ({len(captured[name])} statements)")
        time_raw_sql(args.url, captured[name], max(5, args.warmup))  # warm the cache
        totals, parts = time_raw_sql(args.url, captured[name], args.requests)
        results[name] = {"sql": summary_ms(totals), "sql_parts": parts}

    if not args.sql_only:
        with tempfile.NamedTemporaryFile("w+b", prefix="finstack-bench-gunicorn-", suffix=".log", delete=False) as out:
            process, port = start_server(args.url, secret_env, out)
            try:
                token = login(port)
                for name in names:
                    path = ENDPOINTS[name][0]
                    log(f"HTTP: {name}")
                    sequential(port, token, path, args.warmup)
                    results[name]["http"] = summary_ms(sequential(port, token, path, args.requests))
                    results[name]["rps"] = throughput(port, token, path, args.concurrency, args.duration)
            finally:
                stop_server(process)
        os.unlink(out.name)

    print_table(args, names, results, seeding, (load_before, os.getloadavg()))


def print_table(args, names, results, seeding, loads):
    print(f"\n{args.tasks:,} tasks, {args.users} users; {args.requests} sequential requests; ", end="")
    print(f"req/s with {args.concurrency} clients for {args.duration:g} s; {os.cpu_count()} CPUs, ", end="")
    print("load average at start/end: " + " / ".join(f"{load[0]:.1f}" for load in loads))
    if seeding is not None:
        print(f"seeding: {seeding:.1f} s")
    header = "| endpoint | HTTP median ms | HTTP p99 ms | req/s | SQL median ms | SQL p99 ms | SQL parts (median ms) |"
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for name in names:
        result = results[name]
        http = result.get("http", {"median": math.nan, "p99": math.nan})
        parts = " + ".join(f"{part['median']:.1f}" for part in result["sql_parts"])
        print(
            f"| {name} | {http['median']:.1f} | {http['p99']:.1f} | {result.get('rps', math.nan):.1f} "
            f"| {result['sql']['median']:.1f} | {result['sql']['p99']:.1f} | {parts} |"
        )


if __name__ == "__main__":
    main()
