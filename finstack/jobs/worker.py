"""The worker: runs periodic jobs when due, then every due job, one at a time, each outside the claim's transaction.

`flask worker` runs one per process (run several: they share the work); `python app.py` runs one in a thread
(`start_in_process`); `run_due` and `drain` are the `--once` semantics, which the cron commands use for their mail.
"""

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from contextlib import contextmanager

from flask import current_app

from finstack.extensions import db
from finstack.jobs import service

log = logging.getLogger(__name__)


def worker_name():
    """Unique per worker: host, process and a random part (two workers in one process are two names)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_job(job, name):
    """Run one claimed job's handler and record the outcome. Returns the job's status afterwards."""
    job_handler = service.handler_for(job.kind)
    if job_handler is None:
        return service.mark_failed_attempt(job, name, f"No handler for job kind {job.kind!r}")
    if job.attempt > service.max_attempts(job_handler):
        # The worker running the last allowed attempt stopped (killed) before it finished: give up.
        return service.mark_failed_attempt(job, name, f"Attempt {job.attempt - 1} never finished (lease lapsed)")
    try:
        with _lease_kept(job, name):
            job_handler.run(job)
    except Exception as exc:
        db.session.rollback()
        status = service.mark_failed_attempt(job, name, "".join(traceback.format_exception_only(exc)).strip())
        log.warning("Job %s (%s) attempt %d failed (%s): %s", job.id, job.kind, job.attempt, status, exc)
        return status
    db.session.rollback()  # whatever the handler left uncommitted is not the job's outcome
    service.mark_done(job, name)
    return "done"


@contextmanager
def _lease_kept(job, name):
    """While the block runs, a thread extends the job's lease every third of JOB_LEASE_SECONDS: a handler slower
    than the lease is not taken over while its worker lives; a killed worker stops extending, so its job is."""
    app = current_app._get_current_object()
    stop = threading.Event()
    beat = threading.Thread(target=_keep_leased, args=(app, job, name, stop), name="finstack-lease", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


def _keep_leased(app, job, name, stop):
    interval = app.config["JOB_LEASE_SECONDS"] / 3
    with app.app_context():
        while not stop.wait(interval):
            try:
                service.extend_lease(job, name)
            except Exception:  # the database is busy or away: the next beat tries again, within the lease
                log.warning("Could not extend the lease of job %s", job.id, exc_info=True)
            finally:
                db.session.remove()


def run_due(name=None, *, kinds=None, schedules=True, stop=None):
    """Enqueue the periodic jobs now due, then run jobs until none is due (`flask worker --once`). Returns how many
    jobs ran."""
    name = name or worker_name()
    if schedules:
        service.schedule_due()
    count = 0
    while stop is None or not stop.is_set():
        job = service.claim(name, kinds=kinds)
        if job is None:
            break
        run_job(job, name)
        count += 1
    return count


def run_forever(stop, poll_seconds):
    """`flask worker`: `run_due` whenever work may be there (every `poll_seconds`, or at once after this process
    enqueued a job) until `stop` is set; a job in progress finishes first."""
    name = worker_name()
    log.info("Worker %s started", name)
    while not stop.is_set():
        service.enqueued.clear()
        try:
            run_due(name, stop=stop)
        except Exception:  # the database went away, say: log, wait, try again
            log.exception("Worker %s: a pass failed; retrying in %.1f s", name, poll_seconds)
            db.session.rollback()
        finally:
            db.session.remove()
        if not stop.is_set():
            service.enqueued.wait(poll_seconds)
    log.info("Worker %s stopped", name)


def drain(timeout, *, kinds=None, created_since=None):
    """Run due jobs of `kinds` (no periodic ones) until none created since `created_since` is left to run, waiting
    out their back-off; False if some are left after `timeout` seconds. Jobs another worker holds are waited for."""
    name = worker_name()
    deadline = time.monotonic() + timeout
    while True:
        run_due(name, kinds=kinds, schedules=False)
        if not service.pending(kinds=kinds, created_since=created_since):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def start_in_process(app):
    """A daemon thread running the worker in this process (`python app.py`, JOBS_IN_PROCESS); returns its stop
    event."""
    stop = threading.Event()

    def run():
        with app.app_context():
            run_forever(stop, app.config["JOB_POLL_SECONDS"])

    threading.Thread(target=run, name="finstack-worker", daemon=True).start()
    return stop
