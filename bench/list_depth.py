"""Task list latency by depth: page 1, page N by number (OFFSET) and page N by cursor (keyset), in process.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/finstack_pages_bench python bench/list_depth.py --depth 5000

Uses a database seeded by `bench/seed_projects.py` (any size; `--depth` is capped at the last page), as its admin
`bench000`. Each variant runs `--repeat` times through the app's test client (no HTTP server, so the figures are
the application's and the database's time), interleaved; prints the median and p90 in milliseconds, with the
total and whether it was exact.
"""

import argparse
import os
import secrets
import statistics
import time

from flask_jwt_extended import create_access_token

from finstack import create_app
from finstack.extensions import db
from finstack.users.models import User

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_pages_bench"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--depth", type=int, default=5000, help="page number to reach (default 5000)")
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    secret = secrets.token_hex(32)
    settings = {"SQLALCHEMY_DATABASE_URI": args.url, "RATELIMIT_ENABLED": False, "FINSTACK_ENV": "production"}
    app = create_app({**settings, "SECRET_KEY": secret, "JWT_SECRET_KEY": secret})
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.username == "bench000"))
        headers = {"Authorization": f"Bearer {create_access_token(identity=str(admin.id))}"}
        db.session.remove()
    client = app.test_client()

    def get(**query):
        started = time.perf_counter()
        response = client.get("/api/tasks", query_string={"per_page": args.per_page, **query}, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.json
        return response.json, elapsed

    first, _ = get()
    pages = first["pagination"]["pages"]
    depth = min(args.depth, pages)
    before, _ = get(page=depth - 1)
    cursor = before["pagination"]["next_cursor"]
    by_number, _ = get(page=depth)
    by_cursor, _ = get(cursor=cursor)
    assert [item["id"] for item in by_number["items"]] == [item["id"] for item in by_cursor["items"]]
    variants = {"page 1": {}, f"page {depth} (OFFSET)": {"page": depth}, f"page {depth} (cursor)": {"cursor": cursor}}
    timings = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, query in variants.items():
            timings[name].append(get(**query)[1])
    total, exact = first["pagination"]["total"], first["pagination"]["total_exact"]
    kind = "exact" if exact else "estimate"
    print(f"tasks list, per_page {args.per_page}, total {total} ({kind}), {args.repeat} runs")
    for name, values in timings.items():
        values.sort()
        p90 = values[int(len(values) * 0.9) - 1]
        print(f"  {name:<24} median {statistics.median(values):8.1f} ms   p90 {p90:8.1f} ms")


if __name__ == "__main__":
    main()
