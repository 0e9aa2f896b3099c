"""Durable jobs: written in the caller's transaction, idempotent by key, retried with back-off, never run twice by
two workers at once, never lost by a `kill -9` of the worker or of the web process; periodic jobs once per period."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import message_from_bytes

import pytest
import requests
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask_jwt_extended import create_access_token

from finstack import jobs
from finstack.core.mail import stable_message_id
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs import service, worker
from finstack.jobs.models import Job
from finstack.notifications.models import Notification
from finstack.tasks.models import Task
from tests.conftest import free_port
from tests.overlap import run_two_overlapping
from tests.processes import ROOT, START_TIMEOUT, Server, environment, flask_cli

POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))

# What the test handlers did: (kind, job id, attempt, thread name), in order.
ran = []
ran_lock = threading.Lock()


@jobs.handler("test.record")
def _record(job):
    time.sleep(0.01)  # long enough for the other worker to try to take the same job
    with ran_lock:
        ran.append((job.kind, job.id, job.attempt, threading.current_thread().name))


@jobs.handler("test.fail")
def _fail(job):
    with ran_lock:
        ran.append((job.kind, job.id, job.attempt, threading.current_thread().name))
    raise ValueError(f"boom {job.attempt}")


@jobs.handler("test.slow")
def _slow(job):
    time.sleep(job.payload["seconds"])
    with ran_lock:
        ran.append((job.kind, job.id, job.attempt, threading.current_thread().name))


@pytest.fixture(autouse=True)
def _fresh_record():
    ran.clear()
    yield
    ran.clear()


def _jobs(**filters):
    db.session.expire_all()
    return db.session.scalars(sa.select(Job).filter_by(**filters).order_by(Job.created_at)).all()


# --- enqueue -----------------------------------------------------------------------------------------------------


def test_enqueue_in_a_rolled_back_transaction_leaves_no_job(app):
    jobs.enqueue("test.record", {"n": 1}, key="rolled-back")
    db.session.rollback()
    assert _jobs() == []
    assert worker.run_due() == 0 and ran == []


def test_enqueue_commits_with_the_caller(app):
    jobs.enqueue("test.record", {"n": 1})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 1  # in this transaction only
    db.session.commit()
    (job,) = _jobs()
    assert (job.kind, job.payload, job.status, job.attempts, job.key) == ("test.record", {"n": 1}, "queued", 0, None)
    assert worker.run_due() == 1
    assert [(kind, job_id) for kind, job_id, _, _ in ran] == [("test.record", job.id)]
    (job,) = _jobs()
    assert (job.status, job.attempts, job.locked_by, job.locked_until) == ("done", 1, None, None)
    assert job.finished_at is not None


def test_the_same_key_twice_stores_one_job(app):
    jobs.enqueue("test.record", {"n": 1}, key="once")
    jobs.enqueue("test.record", {"n": 2}, key="once")  # in the same transaction
    db.session.commit()
    jobs.enqueue("test.record", {"n": 3}, key="once")  # and in a later one
    jobs.enqueue("test.record", {"n": 4})  # no key: never a duplicate
    jobs.enqueue("test.record", {"n": 5})
    db.session.commit()
    assert sorted(job.payload["n"] for job in _jobs()) == [1, 4, 5]
    assert worker.run_due() == 3
    jobs.enqueue("test.record", {"n": 6}, key="once")  # done already: still the same job
    db.session.commit()
    assert worker.run_due() == 0 and len(ran) == 3


def test_a_job_scheduled_later_waits(app):
    jobs.enqueue("test.record", {}, run_at=utcnow() + timedelta(minutes=5))
    db.session.commit()
    assert worker.run_due() == 0
    assert service.claim("w", now=utcnow() + timedelta(minutes=6)) is not None


# --- retries -----------------------------------------------------------------------------------------------------


def _make_due(job_id):
    """Skip the back-off wait: the job is due now."""
    db.session.execute(sa.update(Job).where(Job.id == job_id).values(run_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def test_failures_back_off_exponentially_with_jitter_then_the_job_fails(app):
    app.config.update(JOB_MAX_ATTEMPTS=3, JOB_RETRY_DELAY=10)
    jobs.enqueue("test.fail", {})
    db.session.commit()

    for attempt, ceiling in ((1, 10), (2, 20)):
        before = utcnow()
        assert worker.run_due() == 1
        (job,) = _jobs()
        assert (job.status, job.attempts, job.locked_by) == ("queued", attempt, None)
        assert job.last_error == f"ValueError: boom {attempt}"
        # Jitter: a random point in the upper half of 10 s * 2^(attempt-1).
        assert before + timedelta(seconds=ceiling / 2) <= job.run_at <= utcnow() + timedelta(seconds=ceiling)
        assert worker.run_due() == 0  # not due before its back-off
        _make_due(job.id)

    assert worker.run_due() == 1
    (job,) = _jobs()
    assert (job.status, job.attempts, job.last_error) == ("failed", 3, "ValueError: boom 3")
    assert job.finished_at is not None
    _make_due(job.id)
    assert worker.run_due() == 0  # a failed job is never claimed again
    assert [attempt for _, _, attempt, _ in ran] == [1, 2, 3]


def test_a_claim_takes_the_job_due_longest_and_only_it(app):
    for number, minutes in enumerate((-1, -3, -2)):
        jobs.enqueue("test.record", {"n": number}, run_at=utcnow() + timedelta(minutes=minutes))
    db.session.commit()
    claimed = service.claim("worker-a")
    assert claimed.payload == {"n": 1}
    assert sorted((job.payload["n"], job.status) for job in _jobs()) == [(0, "queued"), (1, "running"), (2, "queued")]


def test_a_kind_without_handler_fails_at_once(app):
    jobs.enqueue("test.nobody-handles-this", {})
    db.session.commit()
    assert worker.run_due() == 1
    (job,) = _jobs()
    assert (job.status, job.attempts) == ("failed", 1)
    assert "No handler" in job.last_error


def test_a_lapsed_lease_is_taken_over_and_the_late_worker_cannot_settle_it(app):
    jobs.enqueue("test.record", {})
    db.session.commit()
    first = service.claim("worker-a")
    assert service.claim("worker-b") is None  # leased to worker-a
    later = utcnow() + timedelta(seconds=app.config["JOB_LEASE_SECONDS"] + 1)
    second = service.claim("worker-b", now=later)
    assert (second.id, second.attempt) == (first.id, 2)
    assert service.mark_done(first, "worker-a") is False  # worker-a lost its lease
    assert _jobs()[0].status == "running"
    assert service.mark_done(second, "worker-b") is True
    assert _jobs()[0].status == "done"


def test_a_live_worker_keeps_the_lease_of_a_job_slower_than_the_lease(app):
    app.config["JOB_LEASE_SECONDS"] = 1
    jobs.enqueue("test.slow", {"seconds": 2.5})
    db.session.commit()
    thread = threading.Thread(target=lambda: _in_context(app, worker.run_due), name="slow-worker")
    thread.start()
    try:
        time.sleep(1.6)  # past the first lease: extended meanwhile, so nobody else may take the job
        assert service.claim("another-worker") is None
        (job,) = _jobs()
        assert job.status == "running" and job.locked_until > utcnow()
    finally:
        thread.join(timeout=30)
    (job,) = _jobs()
    assert (job.status, job.attempts) == ("done", 1)
    assert len(ran) == 1


def _in_context(app, function):
    with app.app_context():
        try:
            return function()
        finally:
            db.session.remove()


# --- two workers at once -----------------------------------------------------------------------------------------


def test_two_workers_at_once_never_run_a_job_twice(app):
    for number in range(30):
        jobs.enqueue("test.record", {"n": number})
    db.session.commit()
    ids = {job.id for job in _jobs()}

    def work():
        _in_context(app, lambda: worker.run_due(schedules=False))

    threads = [threading.Thread(target=work, name=name) for name in ("worker-1", "worker-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(job_id for _, job_id, _, _ in ran) == sorted(ids)  # each job once
    assert {attempt for _, _, attempt, _ in ran} == {1}
    assert {job.status for job in _jobs()} == {"done"}
    if POSTGRES:  # SKIP LOCKED: the two really worked side by side; SQLite serialises the claims
        assert {thread for _, _, _, thread in ran} == {"worker-1", "worker-2"}


# --- the scheduler -----------------------------------------------------------------------------------------------


def _overdue_task(user, creator):
    task = Task(
        entity_name="Late Ltd",
        task_type="Filing",
        contact_person_id=user.id,
        created_by=creator.id,
        status="open",
        date_created=utcnow() - timedelta(days=2),
        task_time=utcnow() - timedelta(hours=2),
    )
    db.session.add(task)
    db.session.commit()
    return task


def test_a_periodic_job_runs_once_per_period_with_two_workers(app, make_user, manager):
    app.config["SCHEDULE_OVERDUE_SECONDS"] = 60
    task = _overdue_task(make_user(), manager)

    # Two workers tick and run at the same moment (their transactions made to overlap): one sweep, one notification.
    results = run_two_overlapping(app, worker.run_due, lock_table="job_schedules")
    assert sum(results) == 1  # jobs run: the one sweep, by either worker
    (sweep,) = _jobs(kind="tasks.sweep_overdue")
    assert sweep.status == "done"
    assert [n.task_id for n in db.session.scalars(sa.select(Notification))] == [task.id]

    # The next period starts 60 s after the first: not before, once then.
    now = utcnow()
    assert service.schedule_due(now + timedelta(seconds=30)) == []
    assert service.schedule_due(now + timedelta(seconds=61)) == ["tasks.sweep_overdue"]
    assert service.schedule_due(now + timedelta(seconds=62)) == []
    assert len(_jobs(kind="tasks.sweep_overdue")) == 2


def test_two_ticks_at_once_enqueue_one_job(app):
    app.config["SCHEDULE_SLA_SECONDS"] = 60
    now = utcnow()
    results = run_two_overlapping(app, lambda: service.schedule_due(now), lock_table="job_schedules")
    assert sorted(results) == [[], ["tickets.sweep_sla"]]
    assert len(_jobs(kind="tickets.sweep_sla")) == 1


def test_every_sweep_runs_on_its_schedule(app, make_user, manager):
    app.config.update(
        SCHEDULE_OVERDUE_SECONDS=60, SCHEDULE_SLA_SECONDS=60, SCHEDULE_MISUSE_SECONDS=60, SCHEDULE_PRUNE_JOBS_SECONDS=60
    )
    task = _overdue_task(make_user(), manager)
    assert worker.run_due() == 4
    assert sorted((job.kind, job.status) for job in _jobs()) == [
        ("jobs.prune", "done"),
        ("tasks.sweep_overdue", "done"),
        ("tickets.sweep_misuse", "done"),
        ("tickets.sweep_sla", "done"),
    ]
    assert [n.task_id for n in db.session.scalars(sa.select(Notification))] == [task.id]
    assert worker.run_due() == 0  # the next period has not come


def test_an_interval_of_zero_turns_a_schedule_off(app, make_user, manager):
    _overdue_task(make_user(), manager)  # SCHEDULE_OVERDUE_SECONDS is 0 in the tests
    assert worker.run_due() == 0
    assert _jobs() == [] and db.session.scalars(sa.select(Notification)).all() == []


def test_done_jobs_are_pruned_after_the_retention_period(app):
    for key in ("old-done", "old-failed", "new-done"):
        jobs.enqueue("test.record", {}, key=key)
    db.session.commit()
    old = utcnow() - timedelta(days=app.config["JOB_RETENTION_DAYS"] + 1)
    db.session.execute(sa.update(Job).where(Job.key == "old-done").values(status="done", finished_at=old))
    db.session.execute(sa.update(Job).where(Job.key == "old-failed").values(status="failed", finished_at=old))
    db.session.execute(sa.update(Job).where(Job.key == "new-done").values(status="done", finished_at=utcnow()))
    db.session.commit()
    assert service.prune() == 1
    assert sorted(job.key for job in _jobs()) == ["new-done", "old-failed"]


# --- processes killed with SIGKILL -------------------------------------------------------------------------------


class BlockingSink:
    """An SMTP server whose first DATA hangs (the worker is mid-delivery) until `release`; keeps every message."""

    def __init__(self):
        self.messages = []
        self.arrived = threading.Event()
        self.released = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if not self.arrived.is_set():
            self.arrived.set()
            while not self.released.is_set():
                await asyncio.sleep(0.05)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _assign(client_or_url, actor, assignee):
    body = {
        "entity_name": "Acme Ltd",
        "task_type": "Tax Filing",
        "task_time": "2031-01-01T09:00:00Z",
        "contact_person_id": str(assignee.id),
    }
    headers = {"Authorization": f"Bearer {create_access_token(identity=str(actor.id))}"}
    if isinstance(client_or_url, str):
        return requests.post(f"{client_or_url}/api/tasks", json=body, headers=headers, timeout=30)
    return client_or_url.post("/api/tasks", json=body, headers=headers)


def test_a_job_survives_a_worker_killed_mid_delivery(app_config, database_url, make_user):
    sink = BlockingSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False)
    from finstack import create_app

    app = create_app(app_config)
    try:
        with app.app_context():
            actor, assignee = make_user(role="manager"), make_user()
            address = assignee.email
            assert _assign(app.test_client(), actor, assignee).status_code == 201
            (job,) = _jobs(kind="mail")
            env = environment(
                database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, JOB_LEASE_SECONDS=5, JOB_POLL_SECONDS=0.2
            )
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                assert sink.arrived.wait(START_TIMEOUT), "the worker never delivered"
            finally:
                os.kill(process.pid, signal.SIGKILL)  # mid-delivery: the SMTP server has not answered yet
                process.wait(timeout=30)
            sink.released.set()

            (job,) = _jobs(kind="mail")
            assert (job.status, job.attempts) == ("running", 1)
            assert worker.run_due() == 0  # the dead worker's lease still holds the job
            while utcnow() <= job.locked_until:
                time.sleep(0.1)

            result = flask_cli(env, "worker", "--once")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Jobs run: 1" in result.stdout
            (job,) = _jobs(kind="mail")
            assert (job.status, job.attempts) == ("done", 2)
            expected_id = stable_message_id(job.key, app.config["MAIL_DEFAULT_SENDER"])
    finally:
        controller.stop()
    # Delivered again after the lease; the receiver may have kept the interrupted copy too (at least once), and
    # both carry the same Message-ID, so it can tell them apart from two e-mails.
    assert sink.messages, "the e-mail never arrived"
    assert {message["Message-ID"] for message in sink.messages} == {expected_id}
    assert {message["To"] for message in sink.messages} == {address}


def test_flask_worker_stops_on_sigterm(database_url):
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker"],
        cwd=ROOT,
        env=environment(database_url, JOB_POLL_SECONDS=0.2, LOG_LEVEL="info"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        while line and "started" not in line:
            line = process.stdout.readline()
        assert "Worker" in line, "the worker never started"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "stopped" in output


@pytest.fixture
def app_py(database_url, tmp_path, smtp_sink):
    servers = []

    def start(**extra):
        env = environment(
            database_url,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=smtp_sink.port,
            UPLOAD_FOLDER=tmp_path / "uploads",
            **extra,
        )
        server = Server(env, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.wait_up()
        return server, env

    yield start
    for server in servers:
        server.kill()


def test_mail_queued_by_a_web_process_killed_after_responding_is_sent_by_a_later_worker(
    app_py, smtp_sink, make_user
):
    actor, assignee = make_user(role="manager"), make_user()
    server, env = app_py(JOBS_IN_PROCESS="false")
    response = _assign(server.url, actor, assignee)
    assert response.status_code == 201, response.text
    server.kill()  # kill -9 right after the response

    (job,) = _jobs(kind="mail")
    assert (job.status, job.payload["to"]) == ("queued", assignee.email)
    assert smtp_sink.messages == []

    result = flask_cli(env, "worker", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Jobs run: 1" in result.stdout
    assert [message["To"] for message in smtp_sink.messages] == [assignee.email]
    assert smtp_sink.messages[0]["Message-ID"] == stable_message_id(job.key, "FinStack <noreply@finstack.local>")
    assert _jobs(kind="mail")[0].status == "done"


def test_python_app_py_runs_a_worker_in_its_process(app_py, smtp_sink, make_user):
    actor, assignee = make_user(role="manager"), make_user()
    server, _ = app_py(JOBS_IN_PROCESS="true")
    assert _assign(server.url, actor, assignee).status_code == 201
    deadline = time.monotonic() + 15
    while not smtp_sink.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [message["To"] for message in smtp_sink.messages] == [assignee.email]
    assert _jobs(kind="mail")[0].status == "done"
