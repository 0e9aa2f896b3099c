"""gunicorn.conf.py with psycopg2 left blocking, for `bench/socket_fanout.py --blocking-psycopg2` only: the contrast
that shows what a cooperative psycopg2 prevents (a query waiting in PostgreSQL stalls every client of the worker).

Under the eventlet worker two things make psycopg2 cooperative: gunicorn.conf.py's psycogreen, and eventlet's own
monkey_patch(), which installs eventlet.support.psycopg2_patcher's wait callback when the worker starts (after
post_fork). This file undoes both once the worker is ready."""

import os
from pathlib import Path

_main_config = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
exec(compile(_main_config.read_text(), str(_main_config), "exec"))


def post_fork(server, worker):
    os.environ["SOCKETIO_ASYNC_MODE"] = "eventlet"


def post_worker_init(worker):
    import psycopg2.extensions

    psycopg2.extensions.set_wait_callback(None)
    worker.log.info("Worker %s: psycopg2 BLOCKING (no wait callback), for the benchmark contrast only", worker.pid)
