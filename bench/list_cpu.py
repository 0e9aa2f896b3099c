"""Python CPU per task-list request: FinStack's `GET /api/tasks?page=1&per_page=20` beside bench/peers/bare_flask.py
(issue 12 item 4: within 3x), in one process, without HTTP or a server.

    python bench/list_cpu.py --requests 300 --rounds 3
    python bench/list_cpu.py --profile 200          # cProfile of FinStack's requests, top functions by own time
    python bench/list_cpu.py --rate-limits          # FinStack with its rate limits on, as in production

Both apps answer through Flask's test client against the bench database (bench/compare.py's, already seeded:
run compare.py or api_latency.py first): FinStack with the production config as the demo manager, bare Flask with
no authentication. Each round runs --requests requests per app, interleaved (FinStack, bare, then the reverse), and
takes the request thread's CPU time (`time.thread_time`: other threads of the process, such as FinStack's background
ones, are left out) per request; the database's work is not in it.
It checks that the two answer the same items and prints the median per app and the ratio, and judges nothing. The
test client's own cost is in both figures (so the ratio is a little kinder than over HTTP; compare.py measures
the servers).
"""

import argparse
import cProfile
import importlib
import json
import os
import pstats
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import api_latency  # noqa: E402

PATH = "/api/tasks?page=1&per_page=20"


def finstack_client(url, rate_limits=False):
    import sqlalchemy as sa
    from flask_jwt_extended import create_access_token

    from finstack.extensions import db
    from finstack.users.models import User

    secret_env = {"SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": secrets.token_hex(32)}
    # With --rate-limits, production's limiter (memory storage here) counts every request; its budget is raised so
    # that a bench never trips it.
    limits = {"RATELIMIT_ENABLED": True, "DEFAULT_RATE_LIMIT": "1000000/minute"} if rate_limits else {}
    app = api_latency.make_bench_app(url, {**secret_env, "RATELIMIT_ENABLED": False, **limits})
    with app.app_context():
        manager_id = db.session.scalar(sa.select(User.id).where(User.username == api_latency.MANAGER))
        token = create_access_token(identity=manager_id)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    return lambda: client.get(PATH, headers=headers)


def bare_client(url):
    os.environ["BARE_DATABASE_URL"] = url
    sys.path.insert(0, str(ROOT / "bench" / "peers"))
    client = importlib.import_module("bare_flask").app.test_client()
    return lambda: client.get(PATH)


def cpu_per_request(request, count):
    started = time.thread_time()
    for _ in range(count):
        response = request()
        if response.status_code != 200:
            raise SystemExit(f"GET {PATH} answered {response.status_code}: {response.data[:300]!r}")
    return (time.thread_time() - started) / count * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=api_latency.DEFAULT_URL)
    parser.add_argument("--requests", type=int, default=300, help="requests per app per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate-limits", action="store_true", help="FinStack with its rate limits on (production's)")
    parser.add_argument("--profile", type=int, metavar="N", help="profile (thread CPU) N FinStack requests")
    args = parser.parse_args()

    variants = {"FinStack": finstack_client(args.url, args.rate_limits), "bare Flask": bare_client(args.url)}
    for request in variants.values():  # warm up: connections, caches, imports
        for _ in range(20):
            request()
    finstack_items = json.loads(variants["FinStack"]().data)["items"]
    bare_items = json.loads(variants["bare Flask"]().data)["items"]
    if args.profile:
        profile = cProfile.Profile(time.thread_time)
        profile.runcall(cpu_per_request, variants["FinStack"], args.profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return
    figures = {name: [] for name in variants}
    for index in range(args.rounds):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            figures[name].append(cpu_per_request(variants[name], args.requests))
    load = os.getloadavg()[0]
    limits = "on" if args.rate_limits else "off"
    print(
        f"GET {PATH}; FinStack's rate limits {limits}; {args.rounds} rounds of {args.requests} requests per app; "
        f"load average {load:.1f}"
    )
    print(f"items identical: {finstack_items == bare_items}")
    print("| app | CPU ms/request (median) | rounds |")
    print("|---|---|---|")
    for name, values in figures.items():
        rounds = ", ".join(f"{value:.2f}" for value in values)
        print(f"| {name} | {statistics.median(values):.2f} | {rounds} |")
    ratio = statistics.median(figures["FinStack"]) / statistics.median(figures["bare Flask"])
    print(f"FinStack / bare Flask: {ratio:.1f}x")


if __name__ == "__main__":
    main()
