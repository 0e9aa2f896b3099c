"""Write amplification and replay of the per-user event log, on PostgreSQL.

    python bench/events.py [--url postgresql://postgres@127.0.0.1:5432/finstack_bench_events] [--runs 20]

Creates the database if missing (tables from the models), seeds a 200-member group, then measures:
* one chat message to the group: rows written to `user_events` and the median / p99 ms of `send_message` + commit;
* the replay of 1,000 missed events for one user (`stream.events_after` pages of 500): median / p99 ms.
It prints figures and never judges them.
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finstack import create_app  # noqa: E402
from finstack.chat import conversations, messages  # noqa: E402
from finstack.core.event_log import UserEvent  # noqa: E402
from finstack.extensions import db  # noqa: E402
from finstack.notifications.service import Draft, notify  # noqa: E402
from finstack.stream import service as stream  # noqa: E402
from finstack.users.models import User  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_bench_events"


def ensure_database(url):
    base, name = url.rsplit("/", 1)
    engine = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if not connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def figures(samples):
    samples = sorted(samples)
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    ensure_database(args.url)
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": args.url})
    with app.app_context():
        db.drop_all()
        db.create_all()
        tag = uuid.uuid4().hex[:8]
        people = [
            User(username=f"b{tag}{n}", email=f"b{tag}{n}@example.com", password_hash="x", full_name=f"B {n}")
            for n in range(200)
        ]
        db.session.add_all(people)
        db.session.commit()
        owner = people[0]
        group, _ = conversations.create_conversation(
            owner, participant_ids=[p.id for p in people[1:]], is_group=True, name="Bench"
        )
        db.session.commit()

        timings = []
        for run in range(args.runs):
            before = db.session.scalar(sa.select(sa.func.count()).select_from(UserEvent))
            start = time.perf_counter()
            messages.send_message(owner, group.id, f"message {run}")
            db.session.commit()
            timings.append((time.perf_counter() - start) * 1000)
            rows = db.session.scalar(sa.select(sa.func.count()).select_from(UserEvent)) - before
        median, p99 = figures(timings)
        print(f"message to a 200-member group: {rows} user_events rows, median {median:.1f} ms, p99 {p99:.1f} ms")

        reader = people[1]
        since = db.session.scalar(sa.select(sa.func.max(UserEvent.seq)).where(UserEvent.user_id == reader.id))
        for _ in range(10):
            notify(
                [Draft(user_id=reader.id, type="task_commented", title="t", message="m") for _ in range(100)], owner
            )
            db.session.commit()
        timings = []
        for _ in range(args.runs):
            db.session.expire_all()
            start = time.perf_counter()
            cursor, count, more = since, 0, True
            while more:
                page = stream.events_after(reader, since=cursor, limit=stream.REPLAY_PAGE)
                count += len(page["events"])
                cursor, more = page["last_seq"], page["has_more"]
            timings.append((time.perf_counter() - start) * 1000)
        median, p99 = figures(timings)
        print(f"replay of {count} missed events (pages of 500): median {median:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
