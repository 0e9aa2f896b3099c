"""The projects bench: the board of a big project, moves (and their SQL statements), reports, dashboard, search.

    python bench/seed_projects.py              # once: 1,000,000 tasks in 1,000 projects, 10,000 in B0000
    python bench/projects.py [--runs 50]

Needs the database bench/seed_projects.py fills (same `--url` / `BENCH_DATABASE_URL`). Starts the real server
(`gunicorn -k eventlet -w 1 -c gunicorn.conf.py app:app`, FINSTACK_ENV=production, rate limits off) on a free port,
logs in as `bench006` (a member globally, the manager of the big project B0000: "lead") and `bench001` (a global
manager: "manager"), and times `--runs` sequential requests per endpoint over one keep-alive connection, after
`--warmup` unmeasured ones: p50 and p95 (nearest rank). An endpoint that answers 404 is printed "missing".

Moves: each run moves a different open card of B0000 to in_progress, in turn right after a card, right before a
card, and to the top of the column (`PATCH /api/tasks/<id>/move`, no `version`). Then, in this process (the app
object with the Flask test client), it counts the SQL statements each move issues (SQLAlchemy's
`before_cursor_execute`), in B0000's column and in the column of a small project, as that project's manager: the
same count in both says a move costs the same whatever the column's size. Moves change the data (statuses, order);
re-running the bench on it is fine.

It prints figures and never judges them. See bench/README.md.
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_latency import Client, log, make_bench_app, percentile, start_server, stop_server  # noqa: E402
from bench.seed_projects import BIG_KEY, DEFAULT_URL, PASSWORD  # noqa: E402
from finstack.extensions import db  # noqa: E402

LEAD = "bench006"
MANAGER = "bench001"
SMALL_KEY = "B0001"
QUERY = "invoice"


def endpoints(ids, per_column):
    """name → (user, path) of the GET endpoints, in the order they are timed."""
    big = ids["projects"][BIG_KEY]
    words = urllib.parse.quote(f"{QUERY} audit")
    return {
        "board": (LEAD, f"/api/projects/{big}/board?per_column={per_column}"),
        "project_tasks": (LEAD, f"/api/tasks?project_id={big}&status=open"),
        "progress": (LEAD, f"/api/projects/{big}/progress"),
        "report_project": (MANAGER, f"/api/reports/project/{big}"),
        "team_performance": (MANAGER, "/api/reports/team-performance"),
        "team_performance_project": (MANAGER, f"/api/reports/team-performance?project_id={big}"),
        "workload": (MANAGER, "/api/reports/workload"),
        "dashboard": (LEAD, "/api/dashboard"),
        "search": (MANAGER, f"/api/tasks?q={QUERY}"),
        "search_ranked": (MANAGER, f"/api/tasks?q={words}&sort_by=relevance"),
        "search_as_member": (LEAD, f"/api/tasks?q={QUERY}"),
    }


# --- the data ---------------------------------------------------------------------------------------------------


def look_up(app):
    """Ids of the bench's projects and users, and of the cards the moves use."""
    with app.app_context():
        keys = {"big": BIG_KEY, "small": SMALL_KEY}
        found = db.session.execute(sa.text("SELECT key, id FROM projects WHERE key IN (:big, :small)"), keys)
        projects = dict(found.all())
        if set(projects) != {BIG_KEY, SMALL_KEY}:
            raise SystemExit("no bench data: run bench/seed_projects.py first (with the same --url)")
        managers = dict(
            db.session.execute(
                sa.text(
                    "SELECT p.key, u.username FROM project_members pm JOIN projects p ON p.id = pm.project_id "
                    "JOIN users u ON u.id = pm.user_id WHERE p.key IN (:big, :small) AND pm.role = 'manager'"
                ),
                keys,
            ).all()
        )
        db.session.remove()
    return {"projects": {key: str(value) for key, value in projects.items()}, "managers": managers}


def cards(app, project_id, status, count, offset=0):
    """Ids of `count` live tasks of the project in `status`, newest first, skipping `offset`."""
    with app.app_context():
        rows = db.session.scalars(
            sa.text(
                "SELECT id FROM tasks WHERE project_id = :project AND status = :status AND deleted_at IS NULL "
                "ORDER BY date_created DESC, id LIMIT :count OFFSET :offset"
            ),
            {"project": project_id, "status": status, "count": count, "offset": offset},
        ).all()
        db.session.remove()
    return [str(row) for row in rows]


def column_size(app, project_id, status):
    with app.app_context():
        size = db.session.scalar(
            sa.text(
                "SELECT count(*) FROM tasks WHERE project_id = :project AND status = :status AND deleted_at IS NULL"
            ),
            {"project": project_id, "status": status},
        )
        db.session.remove()
    return size


def move_bodies(moving, anchors):
    """One move per card of `moving` to in_progress: after an anchor, before an anchor, or to the top, in turn."""
    bodies = []
    for index, card in enumerate(moving):
        body = {"status": "in_progress"}
        anchor = anchors[index % len(anchors)]
        if index % 3 == 0:
            body["after_id"] = anchor
        elif index % 3 == 1:
            body["before_id"] = anchor
        bodies.append((card, body))
    return bodies


# --- over HTTP --------------------------------------------------------------------------------------------------


def login(port, username):
    status, payload = Client(port).request("POST", "/api/auth/login", {"username": username, "password": PASSWORD})
    if status != 200:
        raise SystemExit(f"login as {username} answered {status}: {payload[:300]!r}")
    return json.loads(payload)["access_token"]


def timed(client, method, path, body=None):
    started = time.perf_counter()
    status, payload = client.request(method, path, body)
    return status, payload, time.perf_counter() - started


def snippet(payload):
    return " ".join(payload[:120].decode(errors="replace").split())


def result(timings, runs, first_error=None):
    """A table row's figures: p50 / p95 in ms, or why there are none."""
    if first_error is not None:
        status, payload = first_error
        note = "missing" if status == 404 else f"{status}: {snippet(payload)}"
        return {"runs": len(timings), "note": note}
    milliseconds = [seconds * 1000 for seconds in timings]
    return {"runs": runs, "p50": statistics.median(milliseconds), "p95": percentile(milliseconds, 0.95), "note": ""}


def time_get(client, path, runs, warmup):
    for _ in range(warmup):
        status, payload, _ = timed(client, "GET", path)
        if status != 200:
            return result([], runs, (status, payload))
    timings = []
    for _ in range(runs):
        status, payload, seconds = timed(client, "GET", path)
        if status != 200:
            return result(timings, runs, (status, payload))
        timings.append(seconds)
    return result(timings, runs)


def time_moves(client, bodies):
    timings = []
    for card, body in bodies:
        status, payload, seconds = timed(client, "PATCH", f"/api/tasks/{card}/move", body)
        if status != 200:
            return result(timings, len(bodies), (status, payload))
        timings.append(seconds)
    return result(timings, len(bodies))


# --- statements per move, in process ----------------------------------------------------------------------------


def count_move_statements(app, username, bodies, show_sql):
    """Per move: how many SQL statements the request issued (authentication included), or why it failed."""
    client = app.test_client()
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise SystemExit(f"login as {username} answered {response.status_code}: {response.get_data()[:300]!r}")
    headers = {"Authorization": f"Bearer {response.json['access_token']}"}
    counts = []
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        for card, body in bodies:
            statements.clear()
            response = client.patch(f"/api/tasks/{card}/move", json=body, headers=headers)
            if response.status_code != 200:
                return counts, (response.status_code, response.get_data())
            counts.append(len(statements))
            if show_sql:
                print(f"\n-- move {card} {body}: {len(statements)} statements")
                print(";\n".join(statements) + ";")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return counts, None


# --- main -------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--runs", type=int, default=50, help="measured requests per endpoint (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per endpoint (default 5)")
    parser.add_argument("--per-column", type=int, default=50, help="the board's per_column (default 50)")
    parser.add_argument("--counted-moves", type=int, default=10, help="moves whose statements are counted (default 10)")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of every counted move")
    args = parser.parse_args()

    load_before = os.getloadavg()
    secret_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    app = make_bench_app(args.url, {**secret_env, "RATELIMIT_ENABLED": False})
    ids = look_up(app)
    big, small = ids["projects"][BIG_KEY], ids["projects"][SMALL_KEY]
    anchors = cards(app, big, "in_progress", 20)
    moving = cards(app, big, "open", args.runs + args.counted_moves)
    http_moves = move_bodies(moving[: args.runs], anchors)
    counted_big = move_bodies(moving[args.runs :], anchors)
    counted_small = move_bodies(cards(app, small, "open", args.counted_moves), cards(app, small, "in_progress", 20))
    sizes = {key: column_size(app, ids["projects"][key], "in_progress") for key in (BIG_KEY, SMALL_KEY)}

    results = {}
    gets = endpoints(ids, args.per_column)
    with tempfile.NamedTemporaryFile("w+b", prefix="finstack-bench-gunicorn-", suffix=".log", delete=False) as out:
        process, port = start_server(args.url, secret_env, out)
        try:
            clients = {username: Client(port, login(port, username)) for username in (LEAD, MANAGER)}
            for name, (username, path) in gets.items():
                log(f"HTTP: {name}")
                results[name] = time_get(clients[username], path, args.runs, args.warmup)
            log("HTTP: move")
            results["move"] = time_moves(clients[LEAD], http_moves)
        finally:
            stop_server(process)
    os.unlink(out.name)

    log("Statements per move (in process)")
    counted = {
        BIG_KEY: count_move_statements(app, ids["managers"][BIG_KEY], counted_big, args.show_sql),
        SMALL_KEY: count_move_statements(app, ids["managers"][SMALL_KEY], counted_small, args.show_sql),
    }
    print_tables(args, gets, results, counted, sizes, (load_before, os.getloadavg()))


def print_tables(args, gets, results, counted, sizes, loads):
    print(f"\n{args.runs} sequential requests per endpoint after {args.warmup} warm-up; ", end="")
    print(f"{os.cpu_count()} CPUs, ", end="")
    print("load average at start/end: " + " / ".join(f"{load[0]:.1f}" for load in loads))
    print("| endpoint | as | runs | p50 ms | p95 ms | note |")
    print("|---|---|---|---|---|---|")
    users = {name: username for name, (username, _) in gets.items()} | {"move": LEAD}
    for name, row in results.items():
        figures = f"{row['p50']:.1f} | {row['p95']:.1f}" if "p50" in row else "- | -"
        print(f"| {name} | {users[name]} | {row['runs']} | {figures} | {row['note']} |")
    print("\n| project | in_progress column (cards) | moves counted | SQL statements per move (min / median / max) |")
    print("|---|---|---|---|")
    for key, (counts, error) in counted.items():
        figures = f"{min(counts)} / {statistics.median(counts):g} / {max(counts)}" if counts else "-"
        if error is not None:
            status, payload = error
            figures += " (missing)" if status == 404 else f" (then {status}: {snippet(payload)})"
        print(f"| {key} | {sizes[key]:,} | {len(counts)} | {figures} |")


if __name__ == "__main__":
    main()
