"""Two sweeps at once, their transactions made to overlap: the harness of the sweeps' exactly-once tests."""

import threading
import time

import pytest
import sqlalchemy as sa

from finstack.extensions import db


def _waiting_for_a_lock(connection, pids):
    return connection.execute(
        sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid IN :pids AND wait_event_type = 'Lock'").bindparams(
            sa.bindparam("pids", expanding=True)
        ),
        {"pids": pids},
    ).scalar()


def run_two_overlapping(app, sweep, *, lock_table):
    """Run `sweep()` in two threads, each with its own app context, session and connection, while a third
    connection holds them up so that their transactions overlap; returns the two results.

    PostgreSQL: the third connection holds `lock_table` in SHARE mode (both sweeps can claim, neither can write there
    until it lets go), and lets go once one sweep waits for that lock and the other waits too or has finished.
    SQLite: it holds the write lock (`BEGIN IMMEDIATE`) for half a second, then both race for it.
    """
    postgres = db.engine.dialect.name == "postgresql"
    results, errors, pids = [], [], []

    def run():
        with app.app_context():
            try:
                if postgres:  # the connection this session (and so the sweep) works on
                    pids.append(db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar())
                results.append(sweep())
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    with db.engine.connect() as blocker:
        if postgres:
            blocker.execute(sa.text(f"LOCK TABLE {lock_table} IN SHARE MODE"))
        else:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        threads = [threading.Thread(target=run) for _ in range(2)]
        try:
            for thread in threads:
                thread.start()
            if postgres:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with db.engine.connect() as observer:
                        waiting = _waiting_for_a_lock(observer, pids) if len(pids) == 2 else 0
                    if waiting >= 1 and waiting + len(results) + len(errors) == 2:
                        break
                    time.sleep(0.02)
                else:
                    pytest.fail("the two sweeps never overlapped")
            else:
                time.sleep(0.5)
        finally:
            blocker.rollback()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    return results
