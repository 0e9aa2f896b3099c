"""The durable job queue on PostgreSQL: enqueue rate, worker throughput, commit-to-receipt latency of an e-mail.

    python bench/jobs.py [--url postgresql://postgres@127.0.0.1:5432/finstack_jobs_bench] [--jobs 2000]
                         [--workers 1,2,4] [--mails 50]

Creates the database when missing and migrates it, then, each figure from an empty `jobs` table:

* **enqueue**: JOBS no-op jobs written by `enqueue_many` in one transaction (jobs/s, commit included);
* **throughput**: JOBS no-op jobs run by N worker threads at once (one claim and one settle transaction per job, as
  `flask worker` does), for each N of --workers; beside a floor: the same number of bare one-row UPDATE-and-commit
  round trips on one connection;
* **webhook**: MAILS events published to one webhook on a local HTTP receiver, each committed alone: median and
  p99 from commit to the receiver's arrival (signed JSON POST by the `webhook` job, as for a task write);
* **mail**: MAILS `mail` jobs, each committed alone, delivered by one in-process worker to a local SMTP sink
  (aiosmtpd): median and p99 from commit to the sink's receipt. The worker wakes on commit (as `python app.py`
  does); a `flask worker` in another process finds a job within JOB_POLL_SECONDS (1 s) instead.

Prints figures and asserts nothing about time.
"""

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller
from flask_migrate import upgrade

from finstack import create_app, jobs
from finstack.extensions import db
from finstack.jobs import service, worker
from finstack.jobs.models import Job
from finstack.notifications.service import MAIL_JOB
from finstack.webhooks import service as webhooks
from finstack.webhooks.models import Webhook, WebhookEvent

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/finstack_jobs_bench"


@jobs.handler("bench.noop")
def _noop(job):
    """Nothing: the figure is the queue's own cost."""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_database(url):
    url = sa.make_url(url)
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database})
        if exists.scalar() is None:
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
            print(f"created database {url.database}")
    engine.dispose()


def empty_queue():
    db.session.execute(sa.delete(Job))
    db.session.execute(sa.text("DELETE FROM job_schedules"))
    db.session.commit()


def bench_enqueue(count):
    empty_queue()
    started = time.perf_counter()
    jobs.enqueue_many("bench.noop", [({"n": number}, None) for number in range(count)])
    db.session.commit()
    return count / (time.perf_counter() - started)


def bench_throughput(app, count, workers):
    empty_queue()
    jobs.enqueue_many("bench.noop", [({"n": number}, None) for number in range(count)])
    db.session.commit()

    def work():
        with app.app_context():
            worker.run_due(schedules=False)
            db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.status == "done"))
    assert done == count, f"{done} of {count} jobs done"
    return count / elapsed


def bench_floor(count):
    """Two bare one-row UPDATE + COMMIT round trips per job (a claim and a settle), nothing else."""
    empty_queue()
    jobs.enqueue("bench.noop", {})
    db.session.commit()
    job_id = db.session.scalar(sa.select(Job.id))
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        started = time.perf_counter()
        for _ in range(count * 2):
            cursor.execute("UPDATE jobs SET attempts = attempts + 1 WHERE id = %s", (str(job_id),))
            connection.commit()
        return count / (time.perf_counter() - started)
    finally:
        connection.close()


class Arrivals:
    """When each awaited item reached its receiver (perf_counter), by name."""

    def __init__(self):
        self.times = {}
        self.condition = threading.Condition()

    def arrived(self, name):
        with self.condition:
            self.times[name] = time.perf_counter()
            self.condition.notify_all()

    def wait(self, name):
        with self.condition:
            if not self.condition.wait_for(lambda: name in self.times, timeout=30):
                raise SystemExit(f"{name} never arrived")
        return self.times[name]


def commit_to_receipt(app, count, arrivals, write):
    """(median, p99) ms from the commit of `write(name)` to its arrival, one at a time, with an in-process worker."""
    stop = worker.start_in_process(app)
    latencies = []
    try:
        for number in range(count):
            name = f"bench {number}"
            write(name)
            db.session.commit()
            committed = time.perf_counter()
            latencies.append((arrivals.wait(name) - committed) * 1000)
    finally:
        stop.set()
        service.enqueued.set()
    latencies.sort()
    return statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.99) - 1)]


def bench_mail(app, count):
    empty_queue()
    arrivals = Arrivals()

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            arrivals.arrived(message_from_bytes(envelope.content)["Subject"])
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False)
    try:
        return commit_to_receipt(
            app,
            count,
            arrivals,
            lambda name: jobs.enqueue(MAIL_JOB, {"to": "bench@example.com", "subject": name, "body": "."}, key=name),
        )
    finally:
        controller.stop()


def bench_webhook(app, count):
    """A webhook on a local HTTP receiver, subscribed to `task_created`; each event published as a task write does
    (`webhooks.publish` in the writer's transaction)."""
    empty_queue()
    arrivals = Arrivals()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()
            arrivals.arrived(body["data"]["name"])

        def log_message(self, *args):
            """Quiet."""

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    db.session.execute(sa.delete(Webhook))
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    db.session.add(Webhook(url=url, secret="s" * 32, active=True, subscriptions=[WebhookEvent(event="task_created")]))
    db.session.commit()
    try:
        return commit_to_receipt(app, count, arrivals, lambda name: webhooks.publish("task_created", {"name": name}))
    finally:
        receiver.shutdown()
        db.session.execute(sa.delete(Webhook))
        db.session.commit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--mails", type=int, default=50)
    options = parser.parse_args()

    ensure_database(options.url)
    schedules_off = dict.fromkeys(
        ("SCHEDULE_OVERDUE_SECONDS", "SCHEDULE_SLA_SECONDS", "SCHEDULE_MISUSE_SECONDS", "SCHEDULE_PRUNE_JOBS_SECONDS"),
        0,
    )
    secrets = {"SECRET_KEY": "b" * 40, "JWT_SECRET_KEY": "b" * 40}
    app = create_app({"FINSTACK_ENV": "production", "SQLALCHEMY_DATABASE_URI": options.url, **secrets, **schedules_off})
    with app.app_context():
        upgrade()
        print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
        print("| figure | value |")
        print("|---|---|")
        print(f"| enqueue, {options.jobs} jobs in one transaction | {bench_enqueue(options.jobs):,.0f} jobs/s |")
        print(f"| floor: 2 bare UPDATE + COMMIT per job, one connection | {bench_floor(options.jobs):,.0f} jobs/s |")
        for workers in (int(number) for number in options.workers.split(",")):
            rate = bench_throughput(app, options.jobs, workers)
            print(f"| throughput, {options.jobs} no-op jobs, {workers} worker thread(s) | {rate:,.0f} jobs/s |")
        median, p99 = bench_mail(app, options.mails)
        print(f"| mail, commit to SMTP receipt, {options.mails} e-mails: median / p99 | {median:.1f} / {p99:.1f} ms |")
        median, p99 = bench_webhook(app, options.mails)
        figure = f"webhook, commit to HTTP receipt, {options.mails} events: median / p99"
        print(f"| {figure} | {median:.1f} / {p99:.1f} ms |")
        empty_queue()
        print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")
        db.engine.dispose()


if __name__ == "__main__":
    main()
