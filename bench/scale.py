"""Does a read cost the same at 10k and at 1M tasks? Every documented task-list filter and sort, a cursor page 5,000
deep, the dashboards and project progress, timed side by side over databases of several sizes in one run (issue 12).

    python bench/seed_projects.py --url postgresql://postgres@127.0.0.1:5432/finstack_scale_bench_10k \\
        --users 200 --projects 100 --tasks 10000 --big 100          # and 100k (--big 1000), 1m (--big 10000)
    python bench/scale.py --sizes 10k,100k,1m --repeat 10

Each size is its own database, `finstack_scale_bench_<size>` (`--url-template` to change), seeded by
`bench/seed_projects.py` with the same users, teams and projects, so a filter selects the same share of the tasks at
every size. One app per database (production config, rate limits off) answers through Flask's test client: the
figures are the application's and PostgreSQL's time, without HTTP. Requests are interleaved (each case, then each
size, `--repeat` times, after one warm-up), and each line prints the median per size and the ratio of the largest
size to the smallest. Callers: the admin `bench000`'s manager colleague `bench001` (reads every task) and the member
`bench010` (reads open projects, their team's and their own).

A cursor page `--depth` deep (capped at the last page) is compared with page 1 of the same list in the same database.

It prints figures and judges nothing.
"""

import argparse
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_latency import log, percentile  # noqa: E402
from bench.seed_projects import PASSWORD  # noqa: E402
from finstack import create_app  # noqa: E402
from finstack.extensions import db  # noqa: E402

URL_TEMPLATE = "postgresql://postgres@127.0.0.1:5432/finstack_scale_bench_{size}"
MANAGER, MEMBER, LEAD = "bench001", "bench010", "bench006"
PAGE_ONE, DEEP_PAGE = "list manager: page 1", "list manager: cursor page DEPTH (or the last)"


def task_filters(ids):
    """Each documented filter of `GET /api/tasks` (README "Task list filters"), with values that select the same
    share of the tasks at every size (times are relative to the seeding's `now`)."""
    return {
        "status=open": {"status": "open"},
        "priority=high": {"priority": "high"},
        "contact_person_id": {"contact_person_id": ids["person"]},
        "created_by": {"created_by": ids["person"]},
        "task_type=Invoice": {"task_type": "Invoice"},
        "entity_name=globex": {"entity_name": "globex"},
        "date_from (last day)": {"date_from": ids["day_ago"]},
        "date_from+date_to (one day)": {"date_from": ids["three_days_ago"], "date_to": ids["two_days_ago"]},
        "due_from+due_to (one day)": {"due_from": ids["due_from"], "due_to": ids["due_to"]},
        "q=invoice ledger": {"q": "invoice ledger"},
        "q=invoice ledger, relevance": {"q": "invoice ledger", "sort_by": "relevance"},
        "project_id (B0001)": {"project_id": ids["project"]},
        "team_id (team 0)": {"team_id": ids["team"]},
        "tag=tag07": {"tag": "tag07"},
        "overdue=true": {"overdue": "true"},
        "overdue=false": {"overdue": "false"},
        "no_project=true": {"no_project": "true"},
        "no_project=false": {"no_project": "false"},
        "contact_person_id, sort task_time": {"contact_person_id": ids["person"], "sort_by": "task_time"},
        **{
            f"sort_by={column}": {"sort_by": column}
            for column in ("date_created", "task_time", "entity_name", "task_type", "status", "priority", "updated_at")
        },
    }


class Size:
    """One seeded database, its app, its test client and the callers' tokens."""

    def __init__(self, label, url):
        self.label = label
        secret = secrets.token_hex(32)
        self.app = create_app(
            {
                "FINSTACK_ENV": "production",
                "SQLALCHEMY_DATABASE_URI": url,
                "RATELIMIT_ENABLED": False,
                "SECRET_KEY": secret,
                "JWT_SECRET_KEY": secret,
            }
        )
        self.client = self.app.test_client()
        self.tokens = {username: self.login(username) for username in (MANAGER, MEMBER, LEAD)}
        with self.app.app_context():
            self.tasks = db.session.scalar(sa.text("SELECT count(*) FROM tasks WHERE deleted_at IS NULL"))
            self.ids = self.look_up()
            db.session.remove()

    def login(self, username):
        response = self.client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        if response.status_code != 200:
            raise SystemExit(f"{self.label}: cannot log in as {username}: {response.status_code} {response.json}")
        return response.json["access_token"]

    def look_up(self):
        def one(statement, **params):
            return str(db.session.scalar(sa.text(statement), params))

        now = db.session.scalar(sa.text("SELECT max(date_created) FROM tasks"))
        return {
            "person": one("SELECT id FROM users WHERE username = 'bench012'"),
            "project": one("SELECT id FROM projects WHERE key = 'B0001'"),
            "big_project": one("SELECT id FROM projects WHERE key = 'B0000'"),
            "team": one("SELECT id FROM teams WHERE name = 'Bench team 0'"),
            "day_ago": (now - timedelta(days=1)).isoformat(),
            "three_days_ago": (now - timedelta(days=3)).isoformat(),
            "two_days_ago": (now - timedelta(days=2)).isoformat(),
            "due_from": (now + timedelta(days=3)).isoformat(),
            "due_to": (now + timedelta(days=4)).isoformat(),
        }

    def get(self, username, path, query=None):
        started = time.perf_counter()
        response = self.client.get(
            path, query_string=query or {}, headers={"Authorization": f"Bearer {self.tokens[username]}"}
        )
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{self.label}: GET {path} {query}: {response.status_code} {response.json}")
        return response.json, elapsed


def cases(sizes, depth, per_page):
    """{name: {size label: (username, path, query)}}: the same request in each database."""
    table = {}
    for size in sizes:
        ids = size.ids
        for role, username in (("manager", MANAGER), ("member", MEMBER)):
            for name, query in task_filters(ids).items():
                key = f"list {role}: {name}"
                table.setdefault(key, {})[size.label] = (username, "/api/tasks", {"per_page": per_page, **query})
        first = {"per_page": per_page}
        table.setdefault(PAGE_ONE, {})[size.label] = (MANAGER, "/api/tasks", first)
        cursor, page = cursor_at(size, depth, per_page)
        table.setdefault(DEEP_PAGE, {})[size.label] = (
            MANAGER,
            "/api/tasks",
            {"per_page": per_page, "cursor": cursor},
        )
        size.depth = page
        table.setdefault("dashboard manager: /api/analytics/dashboard", {})[size.label] = (
            MANAGER,
            "/api/analytics/dashboard",
            {},
        )
        table.setdefault("dashboard member: /api/dashboard", {})[size.label] = (MEMBER, "/api/dashboard", {})
        big = ids["big_project"]
        table.setdefault("project progress B0000 (lead)", {})[size.label] = (
            LEAD,
            f"/api/projects/{big}/progress",
            {},
        )
        table.setdefault("project progress B0001 (manager)", {})[size.label] = (
            MANAGER,
            f"/api/projects/{ids['project']}/progress",
            {},
        )
    return table


def cursor_at(size, depth, per_page):
    """The cursor of page `depth` (capped at the last page) of the manager's default list, reached by walking
    cursors would take thousands of requests, so page `depth - 1` is read once by number (OFFSET)."""
    pages = max(1, -(-size.tasks // per_page))
    page = max(2, min(depth, pages))
    before, _ = size.get(MANAGER, "/api/tasks", {"per_page": per_page, "page": page - 1})
    by_number, _ = size.get(MANAGER, "/api/tasks", {"per_page": per_page, "page": page})
    cursor = before["pagination"]["next_cursor"]
    by_cursor, _ = size.get(MANAGER, "/api/tasks", {"per_page": per_page, "cursor": cursor})
    if [item["id"] for item in by_number["items"]] != [item["id"] for item in by_cursor["items"]]:
        raise SystemExit(f"{size.label}: page {page} by number and by cursor differ")
    return cursor, page


def measure(sizes, table, repeat):
    timings = {name: {size.label: [] for size in sizes} for name in table}
    by_label = {size.label: size for size in sizes}
    for run in range(repeat + 1):
        for name, requests in table.items():
            for label, (username, path, query) in requests.items():
                _, elapsed = by_label[label].get(username, path, query)
                if run:  # the first run warms caches and is not counted
                    timings[name][label].append(elapsed)
        log(f"run {run}/{repeat} done")
    return timings


def print_table(sizes, timings, repeat):
    small, large = sizes[0], sizes[-1]
    labels = " | ".join(f"{size.label} ({size.tasks:,}) p50 | p90" for size in sizes)
    print(f"\nms per request, median and p90 of {repeat} interleaved runs")
    print(f"ratio = {large.label} p50 / {small.label} p50\n")
    print(f"| request | {labels} | ratio |")
    print("|---" * (2 * len(sizes) + 2) + "|")
    for name, per_size in timings.items():
        cells = " | ".join(
            f"{statistics.median(per_size[size.label]):.1f} | {percentile(per_size[size.label], 0.9):.1f}"
            for size in sizes
        )
        ratio = statistics.median(per_size[large.label]) / statistics.median(per_size[small.label])
        print(f"| {name} | {cells} | {ratio:.2f}x |")
    print()
    for size in sizes:
        first = statistics.median(timings[PAGE_ONE][size.label])
        deep = statistics.median(timings[DEEP_PAGE][size.label])
        print(f"{size.label}: cursor page {size.depth} / page 1 = {deep:.1f} / {first:.1f} ms = {deep / first:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1m", help="database size labels, smallest first")
    parser.add_argument("--url-template", default=URL_TEMPLATE, help="database URL with {size}")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--depth", type=int, default=5000, help="the cursor page's depth (default 5000)")
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    with open("/proc/loadavg") as loadavg:
        log(f"load average at start: {loadavg.read().split()[0]}")
    sizes = [Size(label, args.url_template.format(size=label)) for label in args.sizes.split(",")]
    table = cases(sizes, args.depth, args.per_page)
    if args.only:
        kept = {PAGE_ONE, DEEP_PAGE} | {name for name in table if args.only in name}
        table = {name: requests for name, requests in table.items() if name in kept}
    timings = measure(sizes, table, args.repeat)
    print_table(sizes, timings, args.repeat)
    with open("/proc/loadavg") as loadavg:
        print(f"\nload average at end: {loadavg.read().split()[0]}")


if __name__ == "__main__":
    main()
