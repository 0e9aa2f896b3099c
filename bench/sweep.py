"""The overdue sweep and the productivity reports at scale, on PostgreSQL.

    python bench/sweep.py [--url postgresql://postgres@127.0.0.1:5432/finstack_sweep_bench]
                          [--tasks 1000000] [--overdue 100000] [--users 1000] [--repeat 5]

Creates the database when missing and migrates it, seeds USERS users and TASKS tasks with `finstack.seed` (kept
between runs when the counts already match), then shapes the data with one UPDATE so that exactly OVERDUE tasks are
open or in progress with their time passed and never notified, and every other active task is due in the future.
It then times, in seconds:

* the dry-run count and the sweep's first run (claims, notifications, commit), its immediate re-run (nothing left),
  beside a floor: the same claim as one bare UPDATE, rolled back;
* the report service calls (median of REPEAT runs): user-productivity page 1, the full CSV export (query and CSV
  text), a member's own row, team-overview; beside a floor: a bare GROUP BY count of the tasks per assignee.

Mail is off. It prints figures and asserts nothing about time.
"""

import argparse
import csv
import io
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from finstack import create_app
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.models import Notification
from finstack.reports import service as reports
from finstack.reports.schemas import UserProductivityOut, csv_chunks
from finstack.seed import service as seed
from finstack.tasks import overdue
from finstack.tasks.models import Task
from finstack.users.models import User

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_sweep_bench"


def ensure_database(url):
    url = sa.make_url(url)
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database})
        if exists.scalar() is None:
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
            print(f"created database {url.database}")
    engine.dispose()


def count(model, *conditions):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))


def copy_tasks(task_count, user_ids, rng, chunk_size=50_000):
    """`finstack.seed`'s task rows, loaded with COPY.

    `seed.seed_tasks` inserts through the ORM, whose bulk INSERT starts a new statement whenever the set of NULL
    columns changes from one row to the next (here `closed_at`): ~2,400 statements per 5,000 rows, far too slow for
    a million on a shared two-core machine. The rows are the same; only the loading differs.
    """
    now = utcnow()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for offset in range(0, task_count, chunk_size):
            rows = seed.task_rows(min(chunk_size, task_count - offset), user_ids, rng, now)
            columns = list(rows[0])
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in rows:
                writer.writerow(["" if row[column] is None else row[column] for column in columns])
            buffer.seek(0)
            cursor.copy_expert(f"COPY tasks ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
            raw.commit()
    finally:
        raw.close()


def seed_data(user_count, task_count):
    if count(User) == user_count and count(Task) == task_count:
        print(f"reusing {user_count} users and {task_count} tasks")
        return
    tables = ", ".join(table.name for table in db.metadata.sorted_tables)
    db.session.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    db.session.commit()
    rng = seed.make_rng(2024)
    started = time.perf_counter()
    user_ids = seed.seed_users(user_count, rng)
    copy_tasks(task_count, user_ids, rng)
    print(f"seeded {user_count} users and {task_count} tasks in {time.perf_counter() - started:.1f} s")


SHAPE = """
WITH chosen AS (SELECT id FROM tasks WHERE status IN ('open', 'in_progress') ORDER BY id LIMIT :overdue)
UPDATE tasks SET
    task_time = CASE WHEN id IN (SELECT id FROM chosen)
                     THEN CAST(:now AS timestamptz) - interval '1 minute' - random() * interval '60 days'
                     ELSE CAST(:now AS timestamptz) + interval '1 hour' + random() * interval '60 days' END,
    overdue_notified_at = NULL
WHERE status IN ('open', 'in_progress')
"""


def shape(overdue_count, now):
    """Exactly `overdue_count` active tasks overdue and never notified; every other active task due later."""
    db.session.execute(sa.delete(Notification))
    db.session.execute(sa.text(SHAPE), {"overdue": overdue_count, "now": now})
    db.session.execute(
        sa.update(Task)
        .where(Task.overdue_notified_at.is_not(None))
        .values(overdue_notified_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tasks")
        connection.exec_driver_sql("VACUUM ANALYZE notifications")


@contextmanager
def statement_times():
    """{statement kind: [count, seconds]} of the SQL run inside the block (time in the database driver)."""
    spent = defaultdict(lambda: [0, 0.0])

    def before(connection, cursor, statement, parameters, context, executemany):
        connection.info["bench_started"] = time.perf_counter()

    def after(connection, cursor, statement, parameters, context, executemany):
        words = statement.split()
        kind = " ".join(words[:3] if words[0] in ("INSERT", "DELETE") else words[:2])
        spent[kind][0] += 1
        spent[kind][1] += time.perf_counter() - connection.info.pop("bench_started")

    sa.event.listen(db.engine, "before_cursor_execute", before)
    sa.event.listen(db.engine, "after_cursor_execute", after)
    try:
        yield spent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)
        sa.event.remove(db.engine, "after_cursor_execute", after)


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def median_of(repeat, function):
    function()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        elapsed, result = timed(function)
        times.append(elapsed)
    return statistics.median(times), max(times), result


def line(name, seconds, rows, worst=None):
    worst_text = f"  (max {worst:.3f})" if worst is not None else ""
    print(f"{name:<48} {seconds:>8.3f} s  {rows:>10}{worst_text}")


def claim_floor(now):
    """The claim as one bare UPDATE (no chunks, no RETURNING, no notifications), rolled back."""
    elapsed, result = timed(
        lambda: db.session.execute(
            sa.update(Task)
            .where(overdue.due_clause(Task, now))
            .values(overdue_notified_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.rollback()
    return elapsed, result.rowcount


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    ensure_database(args.url)
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": args.url, "MAIL_SERVER": None})
    with app.app_context():
        upgrade()
        seed_data(args.users, args.tasks)
        now = utcnow()
        shape(args.overdue, now)
        manager = db.session.scalar(sa.select(User).where(User.role == "manager").order_by(User.username).limit(1))
        member = db.session.scalar(sa.select(User).where(User.role == "member").order_by(User.username).limit(1))

        print(f"\n{args.tasks} tasks, {args.users} users, {args.overdue} overdue and due a notification")
        print(f"{'':<48} {'seconds':>10}  {'rows':>10}")
        elapsed, counts = timed(lambda: overdue.count_overdue(utcnow()))
        line("sweep --dry-run count", elapsed, counts.due_tasks)
        assert counts.overdue_tasks == counts.due_tasks == args.overdue, counts
        elapsed, rows = claim_floor(utcnow())
        line("floor: the claim as one bare UPDATE", elapsed, rows)

        with statement_times() as spent:
            elapsed, first = timed(lambda: overdue.sweep(utcnow()))
        line("sweep, first run (notified tasks)", elapsed, first.notified_tasks)
        print(f"{'':<48} {'':>10}  {first.notified_users:>10} users")
        for kind, (statements, seconds) in sorted(spent.items(), key=lambda item: -item[1][1]):
            line(f"  {kind} ({statements}x)", seconds, "")
        line("  the rest (Python, commit)", elapsed - sum(seconds for _, seconds in spent.values()), "")
        elapsed, again = timed(lambda: overdue.sweep(utcnow()))
        line("sweep, immediate re-run (notified tasks)", elapsed, again.notified_tasks)
        assert first.notified_tasks == args.overdue and again.notified_tasks == 0
        assert count(Notification) == args.overdue

        def page_one():
            return reports.user_productivity(manager, page=1, per_page=20)

        def full_csv():
            rows = reports.user_productivity_rows(manager)
            return rows, "".join(csv_chunks(UserProductivityOut(), rows))

        def own_row():
            return reports.user_productivity(member, page=1, per_page=20)

        def team():
            return reports.team_overview(manager, limit=5)

        def floor():
            return db.session.execute(
                sa.select(Task.contact_person_id, sa.func.count()).group_by(Task.contact_person_id)
            ).all()

        print()
        seconds, worst, result = median_of(args.repeat, page_one)
        line("user-productivity page 1 (median)", seconds, len(result["items"]), worst)
        seconds, worst, (rows, text) = median_of(args.repeat, full_csv)
        line("user-productivity full CSV (median)", seconds, len(rows), worst)
        print(f"{'':<48} {'':>10}  {len(text):>10} bytes")
        seconds, worst, result = median_of(args.repeat, own_row)
        line("user-productivity, a member's own (median)", seconds, len(result["items"]), worst)
        seconds, worst, result = median_of(args.repeat, team)
        line("team-overview (median)", seconds, result["total_users"], worst)
        seconds, worst, result = median_of(args.repeat, floor)
        line("floor: bare GROUP BY count per assignee", seconds, len(result), worst)
        total_tasks = count(Task)
        print(f"\nchecks: team-overview total_tasks={team()['total_tasks']} (table: {total_tasks})")
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
