"""Helpdesk figures on PostgreSQL: ticket creation with routing, `POST /api/helpdesk/ask`, `flask tickets sweep-sla`.

    python bench/seed_helpdesk.py && python bench/helpdesk.py --parts create,ask
    python bench/seed_helpdesk.py --tickets 1000000 --reset && python bench/helpdesk.py --parts sweep

Needs a database seeded by bench/seed_helpdesk.py (`--url` / `BENCH_DATABASE_URL`, default
`postgresql://postgres@127.0.0.1:5432/finstack_helpdesk_bench`). Prints figures and never judges them.

* `create`: starts `gunicorn -k eventlet -w 1 -c gunicorn.conf.py app:app` (production config, HTTP rate limits off;
  the 5-a-day ticket limit stays on) and files tickets through `POST /api/tickets`, each as a requester with at most
  two tickets in the past 24 hours who files two more at most, so the limit is checked and never hit: p50 / p99 of
  `--runs` sequential requests on one keep-alive connection, then tickets/s with `--concurrency` clients for
  `--duration` seconds. Bodies mention one routing rule's word (1 in 50 none: Triage) as the seeded tickets do; the
  routing of the sequential ones is checked (department as expected, an agent assigned) and printed.
* `ask`: p50 / p99 of `POST /api/helpdesk/ask` for a few questions, as the admin (every resolved or closed ticket),
  a department lead and a requester; then, in process, the statements the answerer sends for each question as the
  admin are captured and run under EXPLAIN ANALYZE: their scan nodes (GIN index or not) and times are printed.
* `sweep`: clears the breach stamps and `ticket_breached` notifications earlier runs left (so it can be run again),
  then times the bare set-based SQL floor (the two UPDATEs stamping every breach, rolled back), and
  `flask tickets sweep-sla` as cron runs it (a new process: app start included) three ways: `--dry-run` (start-up
  plus counting), the first run (records and notifies every breach, in SLA_SWEEP_CHUNK chunks), the second (nothing
  to do); then once more in one chunk (`SLA_SWEEP_CHUNK` above the backlog: the single transaction of before) after
  clearing the stamps again.
"""

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_latency import Client, log, make_bench_app, percentile, start_server, stop_server  # noqa: E402
from bench.seed_helpdesk import (  # noqa: E402
    DEFAULT_URL,
    DEPARTMENTS,
    PROBLEMS,
    SENTENCES,
    TOPIC_DEPARTMENT,
    TOPICS,
    user_name,
)
from finstack.extensions import db  # noqa: E402
from finstack.tickets import kb  # noqa: E402
from finstack.users.models import User  # noqa: E402

QUESTIONS = [
    "vpn keeps disconnecting when I work from home",
    "how do I reset my password",
    "overtime missing from my payroll",
    "my badge does not open the parking gate",
    "where do I send a subpoena",  # one rare word: what the GIN index is for
]
PER_REQUESTER = 2  # tickets each requester files here; they have at most 2 in the past 24 h: 4 < the limit of 5
SWEEP_KINDS = {
    "first_response": "status IN ('open', 'assigned', 'in_progress', 'waiting_on_requester') "
    "AND first_response_due_at IS NOT NULL AND first_responded_at IS NULL AND first_response_due_at < now()",
    "resolution": "status IN ('open', 'assigned', 'in_progress', 'waiting_on_requester') "
    "AND resolution_due_at IS NOT NULL AND resolution_due_at < coalesce(sla_paused_at, now())",
}


def milliseconds(timings):
    values = [seconds * 1000 for seconds in timings]
    return {"p50": statistics.median(values), "p99": percentile(values, 0.99), "runs": len(values)}


# --- ticket creation ----------------------------------------------------------------------------------------------


def ticket_body(rng):
    """A ticket like the seeded ones: one topic word (a rule's keyword, or `question`: Triage), and the department
    index it should be routed to."""
    topic = rng.randrange(len(TOPICS))
    problem = rng.choice(PROBLEMS)
    first, second = rng.sample(SENTENCES, 2)
    body = {
        "title": f"{TOPICS[topic].capitalize()} {problem}",
        "description": f"Hello, my {TOPICS[topic]} is {problem}. {first} {second}",
        "urgency": rng.choice(["low", "medium", "medium", "high", "critical"]),
    }
    return body, TOPIC_DEPARTMENT[topic]


def requester_tokens(app, count):
    """Access tokens of `count` requesters with at most two tickets in the past 24 hours, each listed twice."""
    with app.app_context():
        ids = db.session.scalars(
            sa.text(
                "SELECT u.id FROM users u WHERE u.role = 'member' "
                "AND NOT EXISTS (SELECT 1 FROM department_agents a WHERE a.user_id = u.id) "
                "AND (SELECT count(*) FROM tickets t WHERE t.requester_id = u.id "
                "     AND t.created_at > now() - interval '24 hours') <= 2 "
                "ORDER BY u.username LIMIT :count"
            ),
            {"count": count},
        ).all()
        if len(ids) < count:
            raise SystemExit(f"only {len(ids)} requesters can file {PER_REQUESTER} tickets: seed more --requesters")
        tokens = [create_access_token(identity=str(user_id)) for user_id in ids]
        db.session.remove()
    return [token for token in tokens for _ in range(PER_REQUESTER)]


def post_ticket(client, token, body):
    client.headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    status, payload = client.request("POST", "/api/tickets", body)
    seconds = time.perf_counter() - started
    if status != 201:
        raise SystemExit(f"POST /api/tickets answered {status}: {payload[:300]!r}")
    return json.loads(payload), seconds


def bench_create(port, app, args):
    rng = random.Random(args.seed)
    budget = args.runs + args.warmup + args.max_concurrent_tickets
    tokens = iter(requester_tokens(app, -(-budget // PER_REQUESTER)))
    client = Client(port)
    for _ in range(args.warmup):
        post_ticket(client, next(tokens), ticket_body(rng)[0])
    timings, routed_as_expected, assigned = [], 0, 0
    names = [name for name, _, _ in DEPARTMENTS]
    for _ in range(args.runs):
        body, department = ticket_body(rng)
        ticket, seconds = post_ticket(client, next(tokens), body)
        timings.append(seconds)
        routed_as_expected += (ticket["department"] or {}).get("name") == names[department]
        assigned += ticket["assignee"] is not None
    figures = milliseconds(timings)
    figures.update(routed_as_expected=routed_as_expected, assigned=assigned)
    figures["per_second"], figures["concurrent_tickets"] = create_throughput(port, tokens, args)
    return figures


def create_throughput(port, tokens, args):
    """Tickets/s with `concurrency` clients for `duration` seconds (stops early if the requesters run out)."""
    lock = threading.Lock()
    counts, errors = [0] * args.concurrency, []
    start = threading.Barrier(args.concurrency + 1)
    stop_at = []

    def run(index):
        rng = random.Random(args.seed + 1 + index)
        client = Client(port)
        start.wait()
        try:
            while time.perf_counter() < stop_at[0]:
                with lock:
                    token = next(tokens, None)
                if token is None:
                    break
                post_ticket(client, token, ticket_body(rng)[0])
                counts[index] += 1
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(args.concurrency)]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + args.duration)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"concurrent ticket creation failed: {errors[0]!r}")
    return sum(counts) / elapsed, sum(counts)


# --- helpdesk/ask -------------------------------------------------------------------------------------------------


def askers(app):
    """The admin, IT's lead and one requester with answered tickets: {label: (user id, token)}."""
    with app.app_context():
        admin = db.session.scalar(sa.text(f"SELECT id FROM users WHERE username = {user_name('0')}"))
        lead = db.session.scalar(sa.text(f"SELECT id FROM users WHERE username = {user_name('1')}"))
        requester = db.session.scalar(
            sa.text("SELECT requester_id FROM tickets WHERE status = 'closed' ORDER BY number LIMIT 1")
        )
        found = {"admin": admin, "IT lead": lead, "requester": requester}
        tokens = {label: (user_id, create_access_token(identity=str(user_id))) for label, user_id in found.items()}
        db.session.remove()
    return tokens


def bench_ask(port, users, args):
    results = {}
    client = Client(port)
    for question in QUESTIONS:
        for label, (_, token) in users.items():
            client.headers["Authorization"] = f"Bearer {token}"
            timings, answers = [], None
            for run in range(args.warmup + args.runs):
                started = time.perf_counter()
                status, payload = client.request("POST", "/api/helpdesk/ask", {"query": question})
                seconds = time.perf_counter() - started
                if status != 200:
                    raise SystemExit(f"POST /api/helpdesk/ask answered {status}: {payload[:300]!r}")
                if run >= args.warmup:
                    timings.append(seconds)
                answers = json.loads(payload)["answers"]
            figures = milliseconds(timings)
            figures["sources"] = "+".join(sorted({answer["source"] for answer in answers})) or "none"
            results[(question, label)] = figures
    return results


def explain_ask(app, url, user_id, questions):
    """EXPLAIN ANALYZE of the statements `kb.ask` sends for each question as that user: {question: lines}, the
    lines being each search's scan nodes (which index, how many rows) and its execution time."""
    plans, statements = {}, []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    connection = psycopg2.connect(url)
    for question in questions:
        statements.clear()
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", record)
            try:
                kb.ask(db.session.get(User, user_id), query=question, limit=5)
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", record)
            db.session.remove()
        lines = []
        with connection.cursor() as cursor:
            for statement, parameters in statements:
                if "search_vector" not in statement:
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = [row[0].strip().removeprefix("->  ") for row in cursor.fetchall()]
                table = "kb_articles" if "FROM kb_articles" in statement else "tickets"
                lines.append(f"{table}: " + next(line for line in plan if line.startswith("Execution Time")))
                lines += [f"    {line}" for line in plan if "Scan" in line and "Buffers" not in line]
        connection.rollback()
        plans[question] = lines
    connection.close()
    return plans


# --- sweep-sla ----------------------------------------------------------------------------------------------------


def clear_breaches(url):
    """Undo earlier sweeps (the bench's own data): breach stamps and their notifications."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets SET first_response_breached_at = NULL, resolution_breached_at = NULL "
            "WHERE first_response_breached_at IS NOT NULL OR resolution_breached_at IS NOT NULL"
        )
        cursor.execute("DELETE FROM notifications WHERE type = 'ticket_breached'")
        cursor.execute("DELETE FROM audit_logs WHERE action = 'ticket.sla_sweep'")
    connection.close()
    vacuum = psycopg2.connect(url)
    vacuum.autocommit = True
    with vacuum.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tickets")
        cursor.execute("VACUUM ANALYZE notifications")
    vacuum.close()


def sql_floor(url):
    """The two bare UPDATEs stamping every unrecorded breach (no RETURNING, no notifications), rolled back:
    {kind: (rows, seconds)}."""
    connection = psycopg2.connect(url)
    floor = {}
    with connection.cursor() as cursor:
        for kind, clause in SWEEP_KINDS.items():
            started = time.perf_counter()
            cursor.execute(
                f"UPDATE tickets SET {kind}_breached_at = now() WHERE {clause} AND {kind}_breached_at IS NULL"
            )
            floor[kind] = (cursor.rowcount, time.perf_counter() - started)
    connection.rollback()
    connection.close()
    return floor


def flask_sweep(url, secret_env, *options, chunk=None):
    env = {key: value for key, value in os.environ.items() if key not in ("MAIL_SERVER",)}
    env.update(secret_env, FINSTACK_ENV="production", DATABASE_URL=url, FLASK_APP="app:app")
    if chunk is not None:
        env["SLA_SWEEP_CHUNK"] = str(chunk)
    flask = Path(sys.executable).parent / "flask"
    started = time.perf_counter()
    done = subprocess.run(
        [str(flask), "tickets", "sweep-sla", *options], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"flask tickets sweep-sla {' '.join(options)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, " / ".join(line for line in done.stdout.splitlines() if line)


def bench_sweep(url, secret_env):
    clear_breaches(url)
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE status IN "
            "('open', 'assigned', 'in_progress', 'waiting_on_requester')) FROM tickets"
        )
        tickets, active = cursor.fetchone()
    connection.close()
    results = {"tickets": tickets, "active": active, "floor": sql_floor(url)}
    results["dry run"] = flask_sweep(url, secret_env, "--dry-run")
    results["first run"] = flask_sweep(url, secret_env)
    results["second run"] = flask_sweep(url, secret_env)
    clear_breaches(url)
    results["one chunk, first run"] = flask_sweep(url, secret_env, chunk=10_000_000)
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notifications WHERE type = 'ticket_breached'")
        results["notifications"] = cursor.fetchone()[0]
    connection.close()
    return results


# --- main ---------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--parts", default="create,ask,sweep", help="any of create, ask, sweep (default: all)")
    parser.add_argument("--runs", type=int, default=100, help="measured sequential requests (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests first (default 5)")
    parser.add_argument("--ask-runs", type=int, default=30, help="measured asks per question and user (default 30)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients filing tickets at once (default 4)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of concurrent filing (default 15)")
    parser.add_argument(
        "--max-concurrent-tickets", type=int, default=2000, help="requesters prepared for it (default 2000 tickets)"
    )
    parser.add_argument("--seed", type=int, default=10, help="random seed of the ticket bodies (default 10)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"create", "ask", "sweep"}:
        parser.error("--parts: create, ask, sweep")

    loads = [os.getloadavg()]
    secret_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    app = make_bench_app(args.url, {**secret_env, "RATELIMIT_ENABLED": False})
    with app.app_context():
        sizes = db.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM tickets), "
                "(SELECT count(*) FROM tickets WHERE status IN ('resolved', 'closed')), "
                "(SELECT count(*) FROM kb_articles WHERE status = 'published'), "
                "(SELECT count(*) FROM routing_rules), (SELECT count(*) FROM department_agents), "
                "(SELECT count(*) FROM users)"
            )
        ).one()
        db.session.remove()
    created = asked = swept = plan = None
    if parts & {"create", "ask"}:
        users = askers(app) if "ask" in parts else None
        with tempfile.NamedTemporaryFile("w+b", prefix="finstack-bench-gunicorn-", suffix=".log", delete=False) as out:
            process, port = start_server(args.url, secret_env, out)
            try:
                if "create" in parts:
                    log("HTTP: POST /api/tickets")
                    created = bench_create(port, app, args)
                if "ask" in parts:
                    log("HTTP: POST /api/helpdesk/ask")
                    asked = bench_ask(port, users, argparse.Namespace(runs=args.ask_runs, warmup=args.warmup))
            finally:
                stop_server(process)
        os.unlink(out.name)
        if "ask" in parts:
            plan = explain_ask(app, args.url, users["admin"][0], QUESTIONS)
    if "sweep" in parts:
        log("flask tickets sweep-sla")
        swept = bench_sweep(args.url, secret_env)
    loads.append(os.getloadavg())
    report(args, sizes, created, asked, plan, swept, loads)


def report(args, sizes, created, asked, plan, swept, loads):
    tickets, answered, articles, rules, agents, users = sizes
    print(
        f"\n{tickets:,} tickets ({answered:,} resolved or closed), {articles:,} published articles, {rules} routing "
        f"rules, {agents} agents, {users:,} users; {os.cpu_count()} CPUs; load average at start / end: "
        + " / ".join(f"{load[0]:.1f}" for load in loads)
    )
    if created:
        print(
            f"\nPOST /api/tickets (routing, least-loaded agent, daily limit): {created['runs']} sequential after "
            f"{args.warmup} warm-up: p50 {created['p50']:.1f} ms, p99 {created['p99']:.1f} ms; "
            f"{created['per_second']:.1f} tickets/s with {args.concurrency} clients "
            f"({created['concurrent_tickets']} tickets in {args.duration:g} s)"
        )
        print(
            f"routed to the expected department: {created['routed_as_expected']}/{created['runs']}; "
            f"assigned to an agent: {created['assigned']}/{created['runs']}"
        )
    if asked:
        print(f"\nPOST /api/helpdesk/ask, {args.ask_runs} sequential per row after {args.warmup} warm-up")
        print("| question | as | p50 ms | p99 ms | answers from |")
        print("|---|---|---|---|---|")
        for (question, label), figures in asked.items():
            print(f"| {question} | {label} | {figures['p50']:.1f} | {figures['p99']:.1f} | {figures['sources']} |")
    if plan:
        print("\nEXPLAIN ANALYZE of the answerer's searches as the admin (scan nodes):")
        for question, lines in plan.items():
            print(f"{question!r}")
            print("\n".join(f"  {line}" for line in lines))
    if swept:
        print(f"\nflask tickets sweep-sla over {swept['tickets']:,} tickets ({swept['active']:,} active):")
        for kind, (rows, seconds) in swept["floor"].items():
            print(f"  SQL floor, bare UPDATE of the {kind} breaches: {rows:,} rows in {seconds * 1000:.0f} ms")
        for name in ("dry run", "first run", "second run", "one chunk, first run"):
            seconds, output = swept[name]
            print(f"  {name}: {seconds:.2f} s  ({output})")
        print(f"  ticket_breached notifications after the runs: {swept['notifications']:,}")


if __name__ == "__main__":
    main()
