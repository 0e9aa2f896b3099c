"""Seed a PostgreSQL database for the projects bench: users, teams, projects, tasks and tags, set-based.

    python bench/seed_projects.py                       # 50 users, 1,000 projects, 1,000,000 tasks
    python bench/seed_projects.py --tasks 20000 --projects 20 --big 5000 --reset

Creates the database when missing (default `postgresql://postgres@127.0.0.1:5432/finstack_projects_bench`; `--url`
or `BENCH_DATABASE_URL`), migrates it (`flask_migrate.upgrade`, as `flask db upgrade` does), then writes everything
with `INSERT ... SELECT ... FROM generate_series(...)`: no row goes through Python. The data is a function of the
counts (ids are md5 of a name, times are offsets from the seeding's `now`): the same counts, the same data.

* `--users` users `bench000` (admin), `bench001`-`bench005` (managers), the rest members; one password for all
  (`bench-password`). 10 teams of members (user n in team n % 10).
* `--projects` projects `B0000`, `B0001`, ...; every tenth (n % 10 == 9) private; even ones belong to team n % 10.
  Each has four explicit members drawn from the member users: a manager, two members, a viewer.
  `B0000` is the big project and its manager is `bench006` (a member globally): the bench's "lead".
* `--tasks` tasks: the first `--big` in `B0000`, the rest spread evenly over the other projects. Statuses open 40%,
  in progress 25%, closed 30%, cancelled 5%; 1% in the trash; created over the past year (one every
  ~30 s), due from 90 days ago to 90 days ahead; assigned to and created by the project's explicit members (10%
  unassigned); 0 to 2 tags each from a vocabulary of 30; a note of a few words.

Counts that already match are reused (nothing is written); other bench data is replaced only with `--reset`, which
empties every table of the database. The database's name must contain "bench". Ends with VACUUM ANALYZE.
"""

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import psycopg2
import sqlalchemy as sa
from flask import current_app
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_latency import ensure_database, log, make_bench_app  # noqa: E402
from finstack.extensions import db  # noqa: E402
from finstack.seed.service import ENTITIES, SUFFIXES, TASK_TYPES  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_projects_bench"
PASSWORD = "bench-password"
MANAGERS = 5  # bench001..bench005; bench000 is the admin
FIRST_MEMBER = MANAGERS + 1  # bench006, the big project's manager ("lead")
TEAMS = 10
BIG_KEY = "B0000"
CHUNK = 100_000
TAGS = [f"tag{number:02d}" for number in range(30)]
WORDS = ["invoice", "audit", "payroll", "ledger", "forecast", "budget", "compliance", "vendor", "quarterly", "tax"]
TASK_COLUMNS = (
    "id, entity_name, task_type, task_time, contact_person_id, note, status, priority, created_by, date_created, "
    "updated_at, closed_at, version, overdue_notified_at, project_id, deleted_at, deleted_by"
)
# Columns other helpers may add to `tasks` that a seeded row must fill (name → SQL over `n`, the task's number).
# A board rank: fixed-width digits, larger for older tasks, so that every column starts newest first; the final
# 'V' keeps to the key scheme of finstack/tasks/ranks.py (a key never ends in 0).
OPTIONAL_TASK_COLUMNS = {"rank": "lpad((:tasks - n)::text, 10, '0') || 'V'"}


def stable_uuid(kind, number_sql):
    """SQL: a uuid that depends only on `kind` and the number, so a re-seed gives the same ids."""
    return f"md5('finstack-bench-{kind}-' || ({number_sql}))::uuid"


USERS_SQL = f"""
INSERT INTO users (id, username, email, password_hash, full_name, role, department, is_active, token_version,
                   created_at, updated_at)
SELECT {stable_uuid("user", "n")}, 'bench' || lpad(n::text, 3, '0'), 'bench' || lpad(n::text, 3, '0') || '@bench.test',
       :password_hash, 'Bench User ' || n,
       CASE WHEN n = 0 THEN 'admin' WHEN n <= {MANAGERS} THEN 'manager' ELSE 'member' END,
       'bench', true, 0, :now, :now
FROM generate_series(0, :users - 1) AS n
"""

TEAMS_SQL = f"""
INSERT INTO teams (id, name, description, created_by, created_at, updated_at)
SELECT {stable_uuid("team", "t")}, 'Bench team ' || t, NULL, {stable_uuid("user", "1")}, :now, :now
FROM generate_series(0, {TEAMS} - 1) AS t
"""

TEAM_MEMBERS_SQL = f"""
INSERT INTO team_members (team_id, user_id, role, joined_at)
SELECT {stable_uuid("team", f"u % {TEAMS}")}, {stable_uuid("user", "u")},
       CASE WHEN u < {FIRST_MEMBER} + {TEAMS} THEN 'manager' ELSE 'member' END, :now
FROM generate_series({FIRST_MEMBER}, :users - 1) AS u
"""

PROJECTS_SQL = f"""
INSERT INTO projects (id, key, name, description, status, visibility, team_id, start_date, due_date, created_by,
                      created_at, updated_at)
SELECT {stable_uuid("project", "p")}, 'B' || lpad(p::text, 4, '0'), 'Bench project ' || p, NULL, 'active',
       CASE WHEN p % 10 = 9 THEN 'private' ELSE 'open' END,
       CASE WHEN p % 2 = 0 THEN {stable_uuid("team", f"p % {TEAMS}")} END, NULL, NULL,
       {stable_uuid("user", f"1 + p % {MANAGERS}")}, :now, :now
FROM generate_series(0, :projects - 1) AS p
"""

# The j-th explicit member of project p is member user FIRST_MEMBER + (3p + j) mod (number of member users).
PROJECT_MEMBER_INDEX = f"{FIRST_MEMBER} + (3 * p + j) % (:users - {FIRST_MEMBER})"

PROJECT_MEMBERS_SQL = f"""
INSERT INTO project_members (project_id, user_id, role, added_at)
SELECT {stable_uuid("project", "p")}, {stable_uuid("user", PROJECT_MEMBER_INDEX)},
       (ARRAY['manager', 'member', 'member', 'viewer'])[j + 1], :now
FROM generate_series(0, :projects - 1) AS p, generate_series(0, 3) AS j
"""

# Task n belongs to project p: the big one for n < big, else one of the others in turn.
TASK_PROJECT = "CASE WHEN n < :big THEN 0 ELSE 1 + (n - :big) % (:projects - 1) END"
STATUS_SLOT = "(n::bigint * 7919) % 20"  # 0-7 open, 8-12 in progress, 13-18 closed, 19 cancelled


def task_person(j):
    """SQL: the user id of explicit member j of the task's project (j an SQL expression in 0..3)."""
    return stable_uuid("user", f"{FIRST_MEMBER} + (3 * p + ({j})) % (:users - {FIRST_MEMBER})")


def tasks_sql(optional_columns):
    extra_names = "".join(f", {name}" for name in optional_columns)
    extra_values = "".join(f", {OPTIONAL_TASK_COLUMNS[name]}" for name in optional_columns)
    return f"""
INSERT INTO tasks ({TASK_COLUMNS}{extra_names})
SELECT {stable_uuid("task", "n")},
       (CAST(:entities AS text[]))[1 + n % cardinality(CAST(:entities AS text[]))] || ' '
           || (CAST(:suffixes AS text[]))[1 + (n / 7) % cardinality(CAST(:suffixes AS text[]))],
       (CAST(:task_types AS text[]))[1 + (n / 3) % cardinality(CAST(:task_types AS text[]))],
       CAST(:now AS timestamptz) - interval '90 days' + (n % 180) * interval '1 day' + (n % 86400) * interval '1 s',
       CASE WHEN n % 10 = 0 THEN NULL ELSE {task_person("n % 4")} END,
       (CAST(:words AS text[]))[1 + n % 10] || ' ' || (CAST(:words AS text[]))[1 + (n / 10) % 10] || ' item ' || n,
       CASE WHEN slot < 8 THEN 'open' WHEN slot < 13 THEN 'in_progress' WHEN slot < 19 THEN 'closed'
            ELSE 'cancelled' END,
       (ARRAY['low', 'medium', 'high'])[1 + (n / 5) % 3],
       {task_person("(n / 4) % 4")},
       created, created,
       CASE WHEN slot BETWEEN 13 AND 18 THEN created + (1 + n % 240) * interval '1 hour' END,
       1, NULL, {stable_uuid("project", "p")},
       CASE WHEN n % 100 = 99 THEN created + interval '1 day' END,
       CASE WHEN n % 100 = 99 THEN {task_person("(n / 4) % 4")} END{extra_values}
FROM (
    SELECT n, {TASK_PROJECT} AS p, {STATUS_SLOT} AS slot,
           CAST(:now AS timestamptz) - (:tasks - n) * interval '30 s' AS created
    FROM generate_series(:first, :last) AS n
) AS numbered
"""


TAGS_SQL = f"""
INSERT INTO task_tags (task_id, tag)
SELECT {stable_uuid("task", "n")}, (CAST(:tags AS text[]))[1 + (n + 11 * k) % cardinality(CAST(:tags AS text[]))]
FROM generate_series(:first, :last) AS n, generate_series(1, n % 3) AS k
"""


def counts():
    """Bench users, bench projects, and tasks in bench projects."""
    return tuple(
        db.session.scalar(sa.text(statement))
        for statement in (
            "SELECT count(*) FROM users WHERE username LIKE 'bench%'",
            "SELECT count(*) FROM projects WHERE key LIKE 'B%'",
            "SELECT count(*) FROM tasks JOIN projects ON projects.id = tasks.project_id WHERE projects.key LIKE 'B%'",
        )
    )


def task_columns_to_fill():
    """The optional columns `tasks` has; stops when it requires a column this script does not fill."""
    columns = sa.inspect(db.engine).get_columns("tasks")
    present = {column["name"] for column in columns}
    unknown = [
        column["name"]
        for column in columns
        if not column["nullable"]
        and column.get("default") is None
        and not column.get("computed")
        and column["name"] not in TASK_COLUMNS.split(", ")
        and column["name"] not in OPTIONAL_TASK_COLUMNS
    ]
    if unknown:
        raise SystemExit(f"tasks requires {', '.join(unknown)}, which this script does not fill: add them to it")
    return [name for name in OPTIONAL_TASK_COLUMNS if name in present]


def reset():
    tables = ", ".join(table.name for table in db.metadata.sorted_tables)
    db.session.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    db.session.commit()
    log(f"emptied every table of {db.engine.url.database}")


def run(statement, **params):
    started = time.perf_counter()
    rows = db.session.execute(sa.text(statement), params).rowcount
    db.session.commit()
    return rows, time.perf_counter() - started


def seed(args, now, optional):
    password_hash = generate_password_hash(PASSWORD, method=current_app.config["PASSWORD_HASH_METHOD"])
    common = {"now": now, "users": args.users, "projects": args.projects, "tasks": args.tasks, "big": args.big}
    for table, statement in (
        ("users", USERS_SQL),
        ("teams", TEAMS_SQL),
        ("team_members", TEAM_MEMBERS_SQL),
        ("projects", PROJECTS_SQL),
        ("project_members", PROJECT_MEMBERS_SQL),
    ):
        rows, seconds = run(statement, password_hash=password_hash, **common)
        log(f"  {table:<16} {rows:>10,} rows  {seconds:6.1f} s")
    lists = {
        "entities": list(ENTITIES),
        "suffixes": list(SUFFIXES),
        "task_types": list(TASK_TYPES),
        "words": WORDS,
        "tags": TAGS,
    }
    insert_tasks = tasks_sql(optional)
    started = time.perf_counter()
    tags = 0
    for first in range(0, args.tasks, CHUNK):
        last = min(first + CHUNK, args.tasks) - 1
        run(insert_tasks, first=first, last=last, **common, **lists)
        tags += run(TAGS_SQL, first=first, last=last, tags=TAGS)[0]
        elapsed = time.perf_counter() - started
        log(f"  tasks {last + 1:>14,} rows  {elapsed:6.1f} s  {(last + 1) / elapsed:8,.0f} rows/s  ({tags:,} tags)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--users", type=int, default=50, help="users (default 50)")
    parser.add_argument("--projects", type=int, default=1000, help="projects (default 1000)")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks (default 1000000)")
    parser.add_argument("--big", type=int, default=10_000, help="tasks of the big project B0000 (default 10000)")
    parser.add_argument("--reset", action="store_true", help="empty every table first (the database is the bench's)")
    args = parser.parse_args()
    if args.big > args.tasks or not 2 <= args.projects <= 10_000 or not FIRST_MEMBER + 4 <= args.users <= 1000:
        # Keys and usernames have four and three digits.
        parser.error(f"need 2 <= --projects <= 10000, {FIRST_MEMBER + 4} <= --users <= 1000, --big <= --tasks")
    name = sa.make_url(args.url).database
    if "bench" not in name:  # it migrates and may empty the database: never one the test suite or an app uses
        raise SystemExit(f"refused: the database's name ({name!r}) does not contain 'bench'")
    ensure_database(args.url)
    app = make_bench_app(args.url, {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)})
    with app.app_context():
        upgrade()
        optional = task_columns_to_fill()
        found = counts()
        wanted = (args.users, args.projects, args.tasks)
        if found == wanted:
            log(f"reusing {args.users} users, {args.projects} projects and {args.tasks:,} tasks")
            return
        if any(found) and not args.reset:
            raise SystemExit(f"the database holds {found} (users, projects, tasks), not {wanted}: use --reset")
        if args.reset:
            reset()
        started = time.perf_counter()
        log(f"seeding {args.users} users, {args.projects} projects, {args.tasks:,} tasks ({args.big:,} in {BIG_KEY})")
        seed(args, db.session.scalar(sa.text("SELECT now()")), optional)
        log(f"seeded in {time.perf_counter() - started:.1f} s (optional task columns filled: {optional or 'none'})")
        db.session.remove()
        db.engine.dispose()
    vacuum_analyze(args.url)


def vacuum_analyze(url):
    """What autovacuum would do after a bulk load: fresh statistics and visibility map (index-only scans)."""
    started = time.perf_counter()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    log(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
