"""`flask worker`: the job worker as a process of its own."""

import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from finstack.jobs import worker


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the periodic jobs and the jobs that are due now, then exit.")
@with_appcontext
def worker_command(once):
    """Run durable jobs (e-mail, …) and the periodic sweeps. Several workers at once share the work safely.

    Stops on SIGTERM or Ctrl-C after the job in progress; a worker killed outright loses its lease and its job runs
    again once the lease (JOB_LEASE_SECONDS) lapses.
    """
    if once:
        click.echo(f"Jobs run: {worker.run_due()}")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker.run_forever(stop, current_app.config["JOB_POLL_SECONDS"])
