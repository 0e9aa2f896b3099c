"""Seed a PostgreSQL database for the helpdesk bench: departments, agents, routing rules, articles, tickets, set-based.

    python bench/seed_helpdesk.py                          # 110,000 tickets (~99,000 resolved or closed)
    python bench/seed_helpdesk.py --tickets 1000000 --reset

Creates the database when missing (default `postgresql://postgres@127.0.0.1:5432/finstack_helpdesk_bench`; `--url`
or `BENCH_DATABASE_URL`), migrates it (`flask_migrate.upgrade`, as `flask db upgrade` does), then writes the tickets
and articles with `INSERT ... SELECT ... FROM generate_series(...)`, 100,000 tickets per statement; the search
vectors are filled by the triggers of migration 0014, as for tickets the API creates. Ids are md5 of a name and times
offsets from the seeding's `now`: the same counts give the same data.

* users `hdb00000` (admin), then 5 per department (the first its lead, the others agents), then `--requesters`
  requesters (plain members); one password for all (`bench-password`);
* 8 departments: IT, HR and Triage (their system keys, as the app creates them) and Facilities, Finance, Security,
  Legal, Procurement; 50 routing rules: one per topic word (7 per department but Triage) and one by category;
* `--articles` published articles, one topic each, written by the topic's department's lead;
* `--tickets` tickets, one topic each (the 50th topic routes to Triage): 60% closed, 30% resolved,
  created over the past year; 10% active (open 3%, assigned 3%, in progress 3%, waiting on requester 1%), created in
  the past two days. A tenth of the active ones (1% of all) have passed their SLA targets (first response too when
  open or assigned) with no breach recorded yet: what `flask tickets sweep-sla` finds. The others are due in 1 hour
  or more. Requester of ticket n: requester (7n mod --requesters).

Counts that already match are reused; other counts need `--reset`, which empties every table of the database (its
name must contain "bench"). Ends with VACUUM ANALYZE.
"""

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_latency import ensure_database, log, make_bench_app  # noqa: E402
from bench.seed_projects import stable_uuid, vacuum_analyze  # noqa: E402
from finstack.extensions import db  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_helpdesk_bench"
PASSWORD = "bench-password"
CHUNK = 100_000
AGENTS_PER_DEPARTMENT = 5
# (name, system key, topic words: each the keyword of one routing rule). Triage has no rule: the 50th topic lands there.
DEPARTMENTS = [
    ("IT", "it", ["vpn", "laptop", "password", "printer", "outlook", "wifi", "monitor"]),
    ("HR", "hr", ["payroll", "leave", "contract", "benefits", "onboarding", "overtime", "pension"]),
    ("Facilities", None, ["parking", "heating", "badge", "elevator", "cleaning", "kitchen", "desk"]),
    ("Finance", None, ["invoice", "expense", "reimbursement", "budget", "refund", "tax", "mileage"]),
    ("Security", None, ["phishing", "malware", "firewall", "certificate", "mfa", "encryption", "spam"]),
    ("Legal", None, ["nda", "gdpr", "trademark", "litigation", "copyright", "subpoena", "compliance"]),
    ("Procurement", None, ["vendor", "supplier", "quote", "licence", "tender", "catalogue", "shipment"]),
    ("Triage", "triage", []),
]
TOPICS = [word for _, _, words in DEPARTMENTS for word in words] + ["question"]  # 50: the last matches no rule
TOPIC_DEPARTMENT = [index for index, (_, _, words) in enumerate(DEPARTMENTS) for _ in words] + [len(DEPARTMENTS) - 1]
CATEGORY_RULE = ("access", 4)  # category `access` → Security, priority 1
PROBLEMS = [
    "not working",
    "keeps disconnecting",
    "request for help",
    "error after the update",
    "very slow since Monday",
    "cannot access it from home",
    "question about the new policy",
    "missing after the migration",
    "wrong amount shown",
    "needs approval urgently",
    "stopped syncing",
    "asks for a reset every day",
]
SENTENCES = [
    "I tried restarting twice and it did not help.",
    "My manager asked me to open a ticket about it.",
    "It worked fine last week before the office move.",
    "Colleagues in my team see the same problem.",
    "I attached a screenshot of the message I get.",
    "This blocks the month end closing for our team.",
    "Could someone call me back this afternoon?",
    "The portal shows an error code and then logs me out.",
    "I am working from home this week.",
    "Please tell me which form I should fill in.",
    "The deadline for this is next Friday.",
    "Nothing changed on my side as far as I know.",
    "The new starter in accounts needs this before Monday.",
    "Our branch office reports it too.",
    "I followed the intranet guide without success.",
    "A reboot fixes it for an hour or so.",
    "It happens only in the morning.",
    "The error mentions a timeout.",
    "I need this for the audit next month.",
    "The old request number was lost in the mailbox.",
    "It looks like a permissions issue to me.",
    "Our director is waiting for an answer.",
    "It started right after my holiday.",
    "Two other departments are affected as well.",
]
ANSWERED = 90  # of every 100 tickets: 60 closed, 30 resolved, then open, assigned, in progress 3 each, waiting 1
STATUS_SQL = """CASE WHEN n % 100 < 60 THEN 'closed' WHEN n % 100 < 90 THEN 'resolved'
    WHEN n % 100 < 93 THEN 'open' WHEN n % 100 < 96 THEN 'assigned' WHEN n % 100 < 99 THEN 'in_progress'
    ELSE 'waiting_on_requester' END"""
ACTIVE = f"n % 100 >= {ANSWERED}"
OVERDUE = f"({ACTIVE} AND (n / 100) % 10 = 0)"
# Statuses follow n % 100 and agents n / 7: topics must not, or all active tickets would share a few topics.
TOPIC = "(n + n / 100) % 50"
DEPARTMENT_OF_TOPIC = f"(:topic_departments)[1 + {TOPIC}]"
# The n-th agent (0-4) of department d is user 1 + 5d + k; k = 0 is the lead.
AGENT = f"1 + {AGENTS_PER_DEPARTMENT} * {DEPARTMENT_OF_TOPIC} + (n / 7) % {AGENTS_PER_DEPARTMENT}"
FIRST_REQUESTER = 1 + AGENTS_PER_DEPARTMENT * len(DEPARTMENTS)


def user_name(number_sql):
    return f"'hdb' || lpad(({number_sql})::text, 5, '0')"


USERS_SQL = f"""
INSERT INTO users (id, username, email, password_hash, full_name, role, department, is_active, token_version,
                   created_at, updated_at)
SELECT {stable_uuid("hd-user", "n")}, {user_name("n")}, {user_name("n")} || '@bench.test', :password_hash,
       'Helpdesk Bench ' || n, CASE WHEN n = 0 THEN 'admin' ELSE 'member' END, 'bench', true, 0, :now, :now
FROM generate_series(0, :users - 1) AS n
"""

DEPARTMENTS_SQL = f"""
INSERT INTO departments (id, name, description, system_key, created_at, updated_at)
SELECT {stable_uuid("hd-department", "d")}, (:names)[d + 1], 'Bench department', (:keys)[d + 1], :now, :now
FROM generate_series(0, :departments - 1) AS d
"""

AGENTS_SQL = f"""
INSERT INTO department_agents (department_id, user_id, role, added_at, last_assigned_at)
SELECT {stable_uuid("hd-department", "d")}, {stable_uuid("hd-user", f"1 + {AGENTS_PER_DEPARTMENT} * d + k")},
       CASE WHEN k = 0 THEN 'lead' ELSE 'agent' END, :now, NULL
FROM generate_series(0, :departments - 1) AS d, generate_series(0, {AGENTS_PER_DEPARTMENT} - 1) AS k
"""

RULES_SQL = f"""
INSERT INTO routing_rules (id, department_id, keywords, category, priority, created_at, updated_at)
SELECT {stable_uuid("hd-rule", "t")}, {stable_uuid("hd-department", "(:topic_departments)[t + 1]")},
       json_build_array((:topics)[t + 1], 'my ' || (:topics)[t + 1]),
       NULL, t % 5, :now - make_interval(secs => 50 - t), :now
FROM generate_series(0, :rules - 1) AS t
UNION ALL
SELECT {stable_uuid("hd-rule", "'category'")}, {stable_uuid("hd-department", str(CATEGORY_RULE[1]))},
       json_build_array(), '{CATEGORY_RULE[0]}', 1, :now, :now
"""

ARTICLES_SQL = f"""
INSERT INTO kb_articles (id, title, body, tags, status, department_id, author_id, published_at, created_at,
                         updated_at)
SELECT {stable_uuid("hd-article", "n")},
       initcap((:topics)[1 + n % 50]) || ': ' || (:problems)[1 + (n / 50) % 12] || ' (guide ' || n || ')',
       'If your ' || (:topics)[1 + n % 50] || ' is ' || (:problems)[1 + (n / 50) % 12] || ', follow these steps. '
         || (:sentences)[1 + n % 24] || ' Check the ' || (:topics)[1 + (n * 7) % 50] || ' settings first, then '
         || 'restart and sign in again. ' || (:sentences)[1 + (n / 24) % 24]
         || ' If the problem stays, open a ticket and mention this article.',
       json_build_array((:topics)[1 + n % 50]), 'published',
       {stable_uuid("hd-department", "(:topic_departments)[1 + n % 50]")},
       {stable_uuid("hd-user", f"1 + {AGENTS_PER_DEPARTMENT} * (:topic_departments)[1 + n % 50]")},
       :now - make_interval(days => n % 365), :now - make_interval(days => n % 365), :now
FROM generate_series(0, :articles - 1) AS n
"""

# Answered tickets: created over the past year, newest last; active ones in the past two days.
CREATED = f"""CASE WHEN {ACTIVE} THEN :now - make_interval(secs => 600 + (n * 37) % 172800)
    ELSE :now - make_interval(secs => 3 * 86400 + (:tickets - n) * (362 * 86400.0 / :tickets)) END"""

TICKETS_SQL = f"""
INSERT INTO tickets (id, number, title, description, urgency, category, status, requester_id, department_id,
                     assignee_id, routing, misuse_flag, misuse_reasons, feedback_rating, feedback_comment, feedback_at,
                     resolved_at, closed_at, created_at, updated_at, first_response_due_at, resolution_due_at,
                     first_responded_at, sla_paused_at, first_response_breached_at, resolution_breached_at)
SELECT {stable_uuid("hd-ticket", "n")}, n + 1,
       initcap((:topics)[1 + {TOPIC}]) || ' ' || (:problems)[1 + (n / 50) % 12],
       'Hello, my ' || (:topics)[1 + {TOPIC}] || ' is ' || (:problems)[1 + (n / 50) % 12] || '. '
         || (:sentences)[1 + (n / 7) % 24] || ' ' || (:sentences)[1 + (n / 7 + 1 + n % 20) % 24]
         || ' Reference ' || n || '.',
       (ARRAY['low', 'medium', 'medium', 'high', 'critical', 'low', 'medium', 'high'])[1 + (n / 3) % 8],
       CASE WHEN n % 17 = 0 THEN 'access' END, status,
       {stable_uuid("hd-user", f"{FIRST_REQUESTER} + (n::bigint * 7) % :requesters")},
       {stable_uuid("hd-department", DEPARTMENT_OF_TOPIC)},
       CASE WHEN status = 'open' THEN NULL ELSE {stable_uuid("hd-user", AGENT)} END,
       :routing, false, NULL,
       CASE WHEN status = 'closed' AND n % 3 = 0 THEN 1 + n % 5 END,
       CASE WHEN status = 'closed' AND n % 3 = 0 THEN 'Thanks' END,
       CASE WHEN status = 'closed' AND n % 3 = 0 THEN created + interval '2 days' END,
       CASE WHEN status IN ('resolved', 'closed') THEN created + interval '1 day' END,
       CASE WHEN status = 'closed' THEN created + interval '2 days' END,
       created, created,
       CASE WHEN {OVERDUE} THEN :now - make_interval(secs => 3600 + n % 86400)
            WHEN {ACTIVE} THEN :now + make_interval(secs => 3600 + n % 28800) ELSE created + interval '2 hours' END,
       CASE WHEN {OVERDUE} THEN :now - make_interval(secs => 3600 + n % 43200)
            WHEN {ACTIVE} THEN :now + make_interval(secs => 3600 + n % 259200) ELSE created + interval '3 days' END,
       CASE WHEN status IN ('open', 'assigned') THEN NULL ELSE created + interval '10 minutes' END,
       CASE WHEN status = 'waiting_on_requester' THEN :now - interval '30 minutes' END,
       NULL, NULL
FROM (SELECT n, {STATUS_SQL} AS status, {CREATED} AS created FROM generate_series(:first, :last) AS n) AS numbered
"""


def array_parameters():
    return {
        "topics": TOPICS,
        "topic_departments": TOPIC_DEPARTMENT,
        "problems": PROBLEMS,
        "sentences": SENTENCES,
    }


def counts():
    return tuple(
        db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in ("users", "kb_articles", "tickets")
    )


def reset():
    tables = db.session.scalars(
        sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
        )
    ).all()
    db.session.execute(sa.text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    db.session.commit()


def seed(args, now):
    users = FIRST_REQUESTER + args.requesters
    values = {"now": now, **array_parameters()}
    names = [name for name, _, _ in DEPARTMENTS]
    keys = [key for _, key, _ in DEPARTMENTS]
    steps = [
        # The app adds IT, HR and Triage at its first start: the bench's own take their keys.
        ("departments (the app's defaults removed)", "DELETE FROM departments", {}),
        ("users", USERS_SQL, {"users": users, "password_hash": generate_password_hash(PASSWORD)}),
        ("departments", DEPARTMENTS_SQL, {"names": names, "keys": keys, "departments": len(DEPARTMENTS)}),
        ("agents", AGENTS_SQL, {"departments": len(DEPARTMENTS)}),
        ("routing rules", RULES_SQL, {"rules": len(TOPICS) - 1}),
        ("articles", ARTICLES_SQL, {"articles": args.articles}),
    ]
    for name, statement, parameters in steps:
        started = time.perf_counter()
        db.session.execute(sa.text(statement), {**values, **parameters})
        db.session.commit()
        log(f"  {name}: {time.perf_counter() - started:.1f} s")
    routing = json.dumps({"department": "Seeded by bench/seed_helpdesk.py", "assignee": "Seeded"})
    started = time.perf_counter()
    for first in range(0, args.tickets, CHUNK):
        last = min(first + CHUNK, args.tickets) - 1
        parameters = {"first": first, "last": last, "tickets": args.tickets, "requesters": args.requesters}
        db.session.execute(sa.text(TICKETS_SQL), {**values, **parameters, "routing": routing})
        db.session.commit()
        done = last + 1
        elapsed = time.perf_counter() - started
        log(f"  {done:>10,} tickets  {elapsed:6.1f} s  {done / elapsed:8,.0f} rows/s")
    db.session.execute(
        sa.text(
            "INSERT INTO ticket_counters (name, value) VALUES ('tickets', :value) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ),
        {"value": args.tickets},
    )
    db.session.commit()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--tickets", type=int, default=110_000, help="tickets (default 110000)")
    parser.add_argument("--requesters", type=int, default=20_000, help="requesters (default 20000)")
    parser.add_argument("--articles", type=int, default=1_000, help="published articles (default 1000)")
    parser.add_argument("--reset", action="store_true", help="empty every table first (the database is the bench's)")
    args = parser.parse_args()
    if not 1 <= args.requesters <= 99_999 - FIRST_REQUESTER:  # usernames have five digits
        parser.error(f"need 1 <= --requesters <= {99_999 - FIRST_REQUESTER}")
    name = sa.make_url(args.url).database
    if "bench" not in name:  # it migrates and may empty the database: never one the test suite or an app uses
        raise SystemExit(f"refused: the database's name ({name!r}) does not contain 'bench'")
    ensure_database(args.url)
    app = make_bench_app(args.url, {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)})
    with app.app_context():
        upgrade()
        if args.reset:
            reset()
        found = counts()
        wanted = (FIRST_REQUESTER + args.requesters, args.articles, args.tickets)
        if found == wanted:
            log(f"reusing {wanted[0]} users, {args.articles} articles and {args.tickets:,} tickets")
            return
        if any(found):
            raise SystemExit(f"the database holds {found} (users, articles, tickets), not {wanted}: use --reset")
        started = time.perf_counter()
        log(f"seeding {wanted[0]} users, {args.articles} articles, {args.tickets:,} tickets")
        seed(args, db.session.scalar(sa.text("SELECT now()")))
        log(f"seeded in {time.perf_counter() - started:.1f} s")
        db.session.remove()
        db.engine.dispose()
    vacuum_analyze(args.url)


if __name__ == "__main__":
    main()
