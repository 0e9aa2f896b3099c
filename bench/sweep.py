"""Every sweep beside its SQL floor, and the productivity reports, at scale on PostgreSQL.

    python bench/sweep.py --tasks 100000 [--url postgresql://postgres@127.0.0.1:5432/finstack_sweep_bench_100k]
                          [--parts overdue,reminders,purge,sla,misuse,attachments,reports] [--overdue N]
                          [--reminders N] [--trash N] [--tickets N] [--files N] [--users 1000] [--rounds 3]
                          [--repeat 5]

Creates the database when missing (default `finstack_sweep_bench_<size>`, e.g. `_10k`, `_1m`: the name must contain
"bench") and migrates it, then seeds, kept between runs when the counts already match: USERS users and TASKS tasks
with `finstack.seed`, and TICKETS tickets (default: as many as tasks) with `bench/seed_helpdesk.py`'s statements (1% of
them past an SLA target). Each sweep is then timed in process, as its CLI command calls it (mail off), beside its
*floor*: the bare set-based SQL doing the same durable work, in one transaction, committed as the sweep commits its
work (then the data is shaped again and VACUUM run, so the sweep does not wade through the floor's dead rows), in
ROUNDS rounds whose medians are compared. Before each round the data is shaped so that the sweep has the stated work
to do:

* overdue (`tasks sweep-overdue`): OVERDUE tasks (default a tenth) overdue and never notified. Floor: the claim UPDATE,
  the notifications by INSERT … SELECT, their `notification` rows in the per-user event log (`user_events`, with the
  payload the socket gets, and the per-user counters) and the audit row.
* reminders (`tasks send-reminders`): REMINDERS (default a tenth) reminders of active tasks whose time came. Floor:
  the claim UPDATE, the notifications worded in the recipient's time zone, their event-log rows.
* purge (`tasks purge-trash`): TRASH (default a hundredth) tasks trashed 40 days ago (topped up after), each with two
  comments and an attachment whose file exists. Floor: the attachments' file names, one DELETE of the tasks (the
  foreign keys cascade to what hangs off them), the files unlinked after the commit.
* sla (`tickets sweep-sla`): the seeded breaches, unrecorded. Floor: per kind the stamping UPDATE, the notifications
  to the assignee and the department's active leads, their event-log rows, a `ticket_updated` event-log row for each
  ticket's requester (the staff view goes to the department room, which is not logged), the audit row.
* misuse (`tickets sweep-misuse`): the tickets filed in the last 24 hours, no report yet today. Floor: one
  INSERT … SELECT of a report per requester showing a pattern, with its patterns and each pattern's evidence (the
  same JSON the sweep writes).
* attachments (`attachments clean`): FILES (default 10,000) unowned stored files. Floor: listing the folder and
  unlinking each file (no database).

For the write sweeps, the SQL time per statement kind is printed under each run. Then the report service calls
(median of REPEAT runs) beside a bare GROUP BY count per assignee. Prints figures and asserts nothing about time.
"""

import argparse
import csv
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from argparse import Namespace
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from bench import seed_helpdesk
from finstack import create_app
from finstack.attachments.cleanup import clean_uploads
from finstack.core.events import after_commit
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.reports import service as reports
from finstack.reports.schemas import UserProductivityOut, csv_chunks
from finstack.seed import service as seed
from finstack.tasks import overdue, reminders
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.tickets import misuse, sla
from finstack.users.models import User

PARTS = ("overdue", "reminders", "purge", "sla", "misuse", "attachments", "reports")
URL_TEMPLATE = "postgresql://postgres@127.0.0.1:5432/finstack_sweep_bench_{size}"
SEED_USERS = User.department.is_distinct_from("bench")  # seed_helpdesk's users have department 'bench'


def size_label(count):
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


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


def scalar(sql, **parameters):
    return db.session.scalar(sa.text(sql), parameters)


def vacuum(*tables):
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.exec_driver_sql(f"VACUUM ANALYZE {table}")


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
    if count(User, SEED_USERS) == user_count and count(Task) == task_count:
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


def seed_tickets(ticket_count):
    """`bench/seed_helpdesk.py`'s departments, agents, requesters and tickets, beside the tasks' users."""
    found = count(sa.table("tickets"))
    if found == ticket_count:
        print(f"reusing {ticket_count} tickets")
        return
    if found:
        raise SystemExit(f"the database holds {found} tickets, not {ticket_count}: drop it or pass --tickets {found}")
    started = time.perf_counter()
    requesters = min(20_000, max(100, ticket_count // 50))
    seed_helpdesk.seed(Namespace(requesters=requesters, articles=10, tickets=ticket_count), scalar("SELECT now()"))
    vacuum("tickets", "users")
    print(f"seeded {ticket_count} tickets ({requesters} requesters) in {time.perf_counter() - started:.1f} s")


# --- Timing --------------------------------------------------------------------------------------------------------


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


SUMMARY = []


def against_floor(name, work, rounds, shape, floor, sweep, tables):
    """Per round: `shape()`, time `floor()` and its commit, `shape()` again (the floor did the sweep's work), VACUUM
    `tables`, time `sweep()` (each returns its rows). Prints each round and the medians' ratio; the SQL time per
    statement kind is the last round's.

    The floor commits because the sweep does: a commit waits for the WAL of everything written to reach the disk,
    part of the work's cost (until 2026-12-03 the floor was rolled back, its commit never timed, which flattered it
    most where the work writes most: the purge's cascades)."""

    def committed_floor():
        rows = floor()
        db.session.commit()
        return rows

    results = []
    for _ in range(rounds):
        shape()
        floor_seconds, floor_rows = timed(committed_floor)
        shape()
        vacuum(*tables)
        with statement_times() as spent:
            sweep_seconds, sweep_rows = timed(sweep)
        results.append((floor_seconds, sweep_seconds))
    report(name, work, results, "bare SQL, committed", floor_rows, sweep_rows)
    for kind, (statements, seconds) in sorted(spent.items(), key=lambda item: -item[1][1])[:6]:
        line(f"    {kind} ({statements}x)", seconds, "")
    line("    the rest (Python, commit)", results[-1][1] - sum(seconds for _, seconds in spent.values()), "")


def report(name, work, results, floor_label, floor_rows, sweep_rows):
    """Print each round's floor and sweep and the ratio of their medians; add the sweep to SUMMARY."""
    print(f"\n{name}: {work}")
    for number, (floor_seconds, sweep_seconds) in enumerate(results, 1):
        line(f"  round {number}: floor ({floor_label})", floor_seconds, floor_rows)
        line(f"  round {number}: sweep (service call)", sweep_seconds, sweep_rows)
    floor_seconds = statistics.median(floor for floor, _ in results)
    sweep_seconds = statistics.median(sweep for _, sweep in results)
    ratio = sweep_seconds / floor_seconds
    print(f"  {'ratio of the medians, sweep / floor':<46} {ratio:>8.2f}x")
    SUMMARY.append((name, work, sweep_seconds, floor_seconds, ratio))


# --- Floors: the durable work of each sweep as bare set-based SQL ---------------------------------------------------

FLOOR_TABLES = """
CREATE TEMP TABLE floor_drafts (user_id uuid, type text, title text, message text, task_id uuid, ticket_id uuid)
    ON COMMIT DROP;
CREATE TEMP TABLE floor_events (user_id uuid, event text, payload json, scope text) ON COMMIT DROP;
CREATE TEMP TABLE floor_breached (id uuid) ON COMMIT DROP;
"""

# The drafts become notifications, and each notification the `notification` event its recipient's sockets get.
NOTIFY = """
WITH notes AS (
    INSERT INTO notifications (id, user_id, type, title, message, task_id, ticket_id, actor_id, is_read, count,
                               created_at, read_at)
    SELECT gen_random_uuid(), user_id, type, left(title, 200), left(message, 1000), task_id, ticket_id, NULL, false, 1,
           :now, NULL
    FROM floor_drafts
    RETURNING *)
INSERT INTO floor_events (user_id, event, payload, scope)
SELECT user_id, 'notification',
       json_build_object('id', id, 'type', type, 'title', title, 'message', message, 'task_id', task_id,
                         'ticket_id', ticket_id, 'actor_id', actor_id, 'is_read', is_read, 'count', count,
                         'created_at', created_at, 'read_at', read_at),
       NULL
FROM notes
"""

# The per-user event log: each user's counter moves by their number of events, which take the numbers below it.
EVENT_LOG = """
WITH counts AS (SELECT user_id, count(*) AS n FROM floor_events GROUP BY user_id),
counters AS (
    INSERT INTO user_event_counters (user_id, last_seq) SELECT user_id, n FROM counts
    ON CONFLICT (user_id) DO UPDATE SET last_seq = user_event_counters.last_seq + excluded.last_seq
    RETURNING user_id, last_seq)
INSERT INTO user_events (user_id, seq, event, payload, scope, created_at)
SELECT e.user_id, c.last_seq - k.n + row_number() OVER (PARTITION BY e.user_id), e.event, e.payload, e.scope, :now
FROM floor_events AS e JOIN counts AS k USING (user_id) JOIN counters AS c USING (user_id)
"""

AUDIT = """
INSERT INTO audit_logs (id, actor_id, action, entity_type, changes, created_at)
VALUES (gen_random_uuid(), NULL, :action, :entity_type, '{}', :now)
"""

OVERDUE_CLAIM = """
WITH claimed AS (
    UPDATE tasks AS t SET overdue_notified_at = :now
    WHERE t.deleted_at IS NULL AND t.status IN ('open', 'in_progress') AND t.task_time < :now
      AND t.contact_person_id IS NOT NULL
      AND (t.overdue_notified_at IS NULL OR t.overdue_notified_at < CAST(:now AS timestamptz) - interval '24 hours'
           OR t.overdue_notified_at < t.task_time)
      AND EXISTS (SELECT 1 FROM users AS u WHERE u.id = t.contact_person_id AND u.is_active)
    RETURNING t.id, t.contact_person_id, t.entity_name, t.task_type, t.task_time)
INSERT INTO floor_drafts
SELECT contact_person_id, 'task_overdue', 'Task overdue: ' || entity_name,
       task_type || ' for ' || entity_name || ' was due '
           || to_char(task_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC and is still open.',
       id, NULL
FROM claimed
"""

REMINDER_CLAIM = """
WITH claimed AS (
    UPDATE task_reminders AS r SET sent_at = :now
    WHERE r.sent_at IS NULL AND r.remind_at <= :now
      AND EXISTS (SELECT 1 FROM tasks AS t JOIN users AS u ON u.id = coalesce(t.contact_person_id, t.created_by)
                  WHERE t.id = r.task_id AND t.deleted_at IS NULL AND t.status IN ('open', 'in_progress')
                    AND u.is_active)
    RETURNING r.task_id)
INSERT INTO floor_drafts
SELECT u.id, 'task_reminder', 'Reminder: ' || t.entity_name,
       t.task_type || ' for ' || t.entity_name || ' is due '
           || to_char(t.task_time AT TIME ZONE u.timezone, 'YYYY-MM-DD HH24:MI') || ' (' || u.timezone || ').',
       t.id, NULL
FROM claimed AS c
JOIN tasks AS t ON t.id = c.task_id
JOIN users AS u ON u.id = coalesce(t.contact_person_id, t.created_by)
"""

TICKET_ACTIVE = "t.status IN ('open', 'assigned', 'in_progress', 'waiting_on_requester')"
SLA_DUE = {
    "first_response": f"{TICKET_ACTIVE} AND t.first_response_due_at IS NOT NULL AND t.first_responded_at IS NULL "
    "AND t.first_response_due_at < :now",
    "resolution": f"{TICKET_ACTIVE} AND t.resolution_due_at IS NOT NULL "
    "AND t.resolution_due_at < coalesce(t.sla_paused_at, :now)",
}

SLA_CLAIM = """
WITH claimed AS (
    UPDATE tickets AS t SET {kind}_breached_at = :now
    WHERE {due} AND t.{kind}_breached_at IS NULL
    RETURNING t.id, t.number, t.title, t.urgency, t.assignee_id, t.department_id),
recipients AS (
    SELECT id, number, title, urgency, assignee_id AS user_id FROM claimed WHERE assignee_id IS NOT NULL
    UNION
    SELECT c.id, c.number, c.title, c.urgency, a.user_id
    FROM claimed AS c
    JOIN department_agents AS a ON a.department_id = c.department_id AND a.role = 'lead'
    JOIN users AS u ON u.id = a.user_id AND u.is_active),
breached AS (INSERT INTO floor_breached SELECT id FROM claimed)
INSERT INTO floor_drafts
SELECT user_id, 'ticket_breached', 'SLA breached: TKT-' || lpad(number::text, 6, '0') || ' ({label})',
       'The {label} target of this ' || urgency || ' ticket has passed: ' || title, NULL, id
FROM recipients
"""

# `ticket_updated` to each breached ticket's requester (the requester's view: the ticket with its people).
TICKET_EVENTS = """
INSERT INTO floor_events (user_id, event, payload, scope)
SELECT t.requester_id, 'ticket_updated',
       json_build_object('id', t.id, 'number', 'TKT-' || lpad(t.number::text, 6, '0'), 'title', t.title,
                         'description', t.description, 'urgency', t.urgency, 'category', t.category,
                         'status', t.status,
                         'requester', json_build_object('id', r.id, 'username', r.username, 'full_name', r.full_name),
                         'department', json_build_object('id', d.id, 'name', d.name),
                         'assignee', CASE WHEN a.id IS NOT NULL THEN
                             json_build_object('id', a.id, 'username', a.username, 'full_name', a.full_name) END,
                         'routing', NULL, 'misuse_flag', t.misuse_flag, 'misuse_reasons', NULL,
                         'resolution', t.resolution, 'feedback_rating', t.feedback_rating,
                         'feedback_comment', t.feedback_comment, 'feedback_at', t.feedback_at,
                         'resolved_at', t.resolved_at, 'closed_at', t.closed_at, 'created_at', t.created_at,
                         'updated_at', t.updated_at,
                         'sla', json_build_object('first_response_due_at', t.first_response_due_at,
                                                  'first_responded_at', t.first_responded_at,
                                                  'first_response_breached_at', t.first_response_breached_at,
                                                  'resolution_due_at', t.resolution_due_at,
                                                  'resolution_breached_at', t.resolution_breached_at,
                                                  'paused_at', t.sla_paused_at)),
       NULL
FROM (SELECT DISTINCT id FROM floor_breached) AS b
JOIN tickets AS t ON t.id = b.id
JOIN users AS r ON r.id = t.requester_id
LEFT JOIN departments AS d ON d.id = t.department_id
LEFT JOIN users AS a ON a.id = t.assignee_id
"""

MISUSE = """
WITH window_tickets AS (
    SELECT t.requester_id, t.number, t.title, length(trim(t.description)) < 20 AS short,
           replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
               lower(t.title), ' ', ''), '.', ''), ',', ''), ';', ''), ':', ''), '!', ''), '?', ''), '-', ''), '_', ''),
               '''', ''), '"', ''), '(', ''), ')', '') AS normalised,
           'TKT-' || lpad(t.number::text, greatest(6, length(t.number::text)), '0') AS reference
    FROM tickets AS t JOIN users AS u ON u.id = t.requester_id AND u.is_active
    WHERE t.created_at > CAST(:now AS timestamptz) - make_interval(hours => :hours) AND t.created_at <= :now),
per_user AS (
    SELECT requester_id, count(*) AS n, json_agg(reference ORDER BY number) AS all_tickets,
           count(*) FILTER (WHERE short) AS short_n,
           json_agg(reference ORDER BY number) FILTER (WHERE short) AS short_tickets
    FROM window_tickets GROUP BY requester_id),
duplicate_groups AS (
    SELECT requester_id, min(number) AS first_number,
           json_build_object('title', (array_agg(title ORDER BY number))[1],
                             'tickets', json_agg(reference ORDER BY number)) AS duplicate_group
    FROM window_tickets GROUP BY requester_id, normalised HAVING count(*) >= 2),
duplicates AS (
    SELECT requester_id, json_agg(duplicate_group ORDER BY first_number) AS groups FROM duplicate_groups
    GROUP BY requester_id)
INSERT INTO misuse_reports (id, user_id, day, window_hours, ticket_count, patterns, evidence, reviewed, created_at,
                            updated_at)
SELECT gen_random_uuid(), p.requester_id, CAST(CAST(:now AS timestamptz) AT TIME ZONE 'UTC' AS date), :hours, p.n,
       array_to_json(array_remove(ARRAY[CASE WHEN p.n >= 5 THEN 'high_volume' END,
                                        CASE WHEN d.groups IS NOT NULL THEN 'duplicate_titles' END,
                                        CASE WHEN p.short_n >= 2 THEN 'short_descriptions' END], NULL)),
       json_strip_nulls(json_build_object(
           'high_volume', CASE WHEN p.n >= 5 THEN json_build_object('threshold', 5, 'tickets', p.all_tickets) END,
           'duplicate_titles', d.groups,
           'short_descriptions', CASE WHEN p.short_n >= 2
                                      THEN json_build_object('under_characters', 20, 'tickets', p.short_tickets) END)),
       false, :now, :now
FROM per_user AS p LEFT JOIN duplicates AS d ON d.requester_id = p.requester_id
WHERE p.n >= 5 OR p.short_n >= 2 OR d.groups IS NOT NULL
ON CONFLICT (user_id, day) DO NOTHING
"""


def run(sql, **parameters):
    return db.session.execute(sa.text(sql), parameters)


def notify_floor(now, action=None, entity_type=None):
    """The drafts in `floor_drafts` (and events in `floor_events`) written as the sweep writes them; the drafts."""
    run(NOTIFY, now=now)
    run(EVENT_LOG, now=now)
    if action is not None:
        run(AUDIT, action=action, entity_type=entity_type, now=now)
    return scalar("SELECT count(*) FROM floor_drafts")


# --- The sweeps ------------------------------------------------------------------------------------------------------

SHAPE_OVERDUE_LATER = """
UPDATE tasks SET task_time = CAST(:now AS timestamptz) + interval '1 hour' + random() * interval '60 days',
                 overdue_notified_at = NULL
WHERE status IN ('open', 'in_progress')
"""
# A second UPDATE, not `CASE WHEN id IN (the chosen ids)` in the first: PostgreSQL hashes that subquery only while
# it fits in work_mem, and a 100,000-id list does not, so every active row was looked up in the list one by one.
SHAPE_OVERDUE_NOW = """
UPDATE tasks SET task_time = CAST(:now AS timestamptz) - interval '1 minute' - random() * interval '60 days'
WHERE id IN (SELECT id FROM tasks WHERE status IN ('open', 'in_progress') ORDER BY id LIMIT :overdue)
"""


def shape_overdue(overdue_count, now):
    """Exactly `overdue_count` active tasks overdue and never notified; every other active task due later. Only the
    notification stamps are reset when that is enough (a round after a sweep): moving every active task's time
    rewrites half the table."""
    run("DELETE FROM notifications WHERE task_id IS NOT NULL")
    run("UPDATE tasks SET overdue_notified_at = NULL WHERE overdue_notified_at IS NOT NULL")
    db.session.commit()
    counts = overdue.count_overdue(now)
    if counts.overdue_tasks != overdue_count or counts.due_tasks != overdue_count:
        run(SHAPE_OVERDUE_LATER, now=now)
        run(SHAPE_OVERDUE_NOW, overdue=overdue_count, now=now)
        db.session.commit()
    vacuum("tasks", "notifications")


def bench_overdue(args):
    shape_overdue(args.overdue, utcnow())
    elapsed, counts = timed(lambda: overdue.count_overdue(utcnow()))
    line("\noverdue --dry-run count", elapsed, counts.due_tasks)
    assert counts.due_tasks == args.overdue, counts

    def floor():
        run(FLOOR_TABLES)
        run(OVERDUE_CLAIM, now=utcnow())
        return notify_floor(utcnow(), "task.overdue_sweep", "task")

    against_floor(
        "overdue",
        f"{args.overdue} tasks overdue, {args.tasks} tasks",
        args.rounds,
        lambda: shape_overdue(args.overdue, utcnow()),
        floor,
        lambda: overdue.sweep(utcnow()).notified_tasks,
        ("tasks", "notifications", "user_events", "user_event_counters"),
    )
    elapsed, again = timed(lambda: overdue.sweep(utcnow()))
    line("  sweep, immediate re-run (nothing to do)", elapsed, again.notified_tasks)


SHAPE_REMINDERS = """
INSERT INTO task_reminders (id, task_id, kind, before_minutes, remind_at, sent_at)
SELECT gen_random_uuid(), id, 'absolute', NULL,
       CAST(:now AS timestamptz) - interval '1 minute' - random() * interval '1 hour', NULL
FROM tasks WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL ORDER BY id DESC LIMIT :reminders
"""


def bench_reminders(args):
    def shape():
        run("DELETE FROM task_reminders")
        run("DELETE FROM notifications WHERE type = 'task_reminder'")
        run(SHAPE_REMINDERS, reminders=args.reminders, now=utcnow())
        db.session.commit()
        vacuum("task_reminders", "notifications")

    def floor():
        run(FLOOR_TABLES)
        run(REMINDER_CLAIM, now=utcnow())
        return notify_floor(utcnow())

    against_floor(
        "reminders",
        f"{args.reminders} reminders due, {args.tasks} tasks",
        args.rounds,
        shape,
        floor,
        lambda: reminders.send_due(utcnow()).sent,
        ("task_reminders", "notifications", "user_events", "user_event_counters"),
    )


TRASH_COMMENTS = """
INSERT INTO comments (id, task_id, author_id, content, created_at, updated_at)
SELECT gen_random_uuid(), t.id, t.created_by, 'note ' || n, t.date_created, t.date_created
FROM tasks AS t CROSS JOIN generate_series(1, 2) AS n WHERE t.deleted_at IS NOT NULL
"""
TRASH_ATTACHMENTS = """
INSERT INTO attachments (id, task_id, uploader_id, original_name, stored_name, content_type, size_bytes, created_at)
SELECT gen_random_uuid(), id, created_by, 'scan.pdf', replace(gen_random_uuid()::text, '-', ''), 'application/pdf', 1,
       date_created
FROM tasks WHERE deleted_at IS NOT NULL RETURNING stored_name
"""


def bench_purge(args):
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-purge-"))
    current_app.config["UPLOAD_FOLDER"] = str(folder)

    def shape():
        missing = args.tasks - count(Task)
        if missing > 0:  # what the previous round purged
            user_ids = db.session.scalars(sa.select(User.id).where(SEED_USERS, User.role != "admin")).all()
            copy_tasks(missing, user_ids, seed.make_rng(missing))
        run("UPDATE tasks SET deleted_at = NULL, deleted_by = NULL WHERE deleted_at IS NOT NULL")
        run(
            "UPDATE tasks SET deleted_at = CAST(:when AS timestamptz) WHERE id IN "
            "(SELECT id FROM tasks WHERE status = 'closed' ORDER BY id LIMIT :trash)",
            when=utcnow() - timedelta(days=40),
            trash=args.trash,
        )
        run("DELETE FROM comments")
        run("DELETE FROM attachments")
        run(TRASH_COMMENTS)
        for stored_name in run(TRASH_ATTACHMENTS).scalars():
            (folder / stored_name).write_bytes(b"x")
        db.session.commit()
        vacuum("tasks", "comments", "attachments")

    def floor():
        """The attachments' names (the cascade would take them), the DELETE; the files once it commits."""
        stored_names = run(
            "SELECT a.stored_name FROM attachments AS a JOIN tasks AS t ON t.id = a.task_id "
            "WHERE t.deleted_at < :cutoff",
            cutoff=cutoff,
        ).scalars().all()
        deleted = run("DELETE FROM tasks WHERE deleted_at < :cutoff", cutoff=cutoff).rowcount

        def remove_files():
            for name in stored_names:
                (folder / name).unlink()

        after_commit(remove_files)
        return deleted

    cutoff = utcnow() - timedelta(days=30)
    against_floor(
        "purge",
        f"{args.trash} trashed tasks with 2 comments and a file each, {args.tasks} tasks",
        args.rounds,
        shape,
        floor,
        lambda: tasks.purge_trash(cutoff),
        ("tasks", "comments", "attachments"),
    )
    shape()  # back to TASKS tasks for the next run
    run("UPDATE tasks SET deleted_at = NULL WHERE deleted_at IS NOT NULL")
    run("DELETE FROM comments")
    run("DELETE FROM attachments")
    db.session.commit()
    shutil.rmtree(folder)


def clear_breaches():
    run(
        "UPDATE tickets SET first_response_breached_at = NULL, resolution_breached_at = NULL "
        "WHERE first_response_breached_at IS NOT NULL OR resolution_breached_at IS NOT NULL"
    )
    run("DELETE FROM notifications WHERE type = 'ticket_breached'")
    db.session.commit()
    vacuum("tickets", "notifications")


def bench_sla(args):
    clear_breaches()
    due = sla.count_due(utcnow())

    def floor():
        now = utcnow()
        run(FLOOR_TABLES)
        for kind, label in sla.KINDS.items():
            run(SLA_CLAIM.format(kind=kind, due=SLA_DUE[kind], label=label), now=now)
        run(TICKET_EVENTS)
        return notify_floor(now, "ticket.sla_sweep", "ticket")

    def sweep():
        result = sla.sweep(utcnow())
        return result.first_response_breaches + result.resolution_breaches

    against_floor(
        "sla",
        f"{due['first_response']} first-response + {due['resolution']} resolution breaches, {args.tickets} tickets",
        args.rounds,
        clear_breaches,
        floor,
        sweep,
        ("tickets", "notifications", "user_events", "user_event_counters"),
    )


def bench_misuse(args):
    def shape():
        run("DELETE FROM misuse_reports")
        db.session.commit()

    against_floor(
        "misuse",
        f"24 h of tickets, {args.tickets} tickets",
        args.rounds,
        shape,
        lambda: run(MISUSE, now=utcnow(), hours=24).rowcount,
        lambda: misuse.sweep(utcnow(), window_hours=24).reports_created,
        ("misuse_reports",),
    )


def bench_attachments(args):
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as folder:
        current_app.config["UPLOAD_FOLDER"] = folder

        def make_files():
            for number in range(args.files):
                Path(folder, f"{number:08d}.bin").write_bytes(b"x")

        def floor():
            removed = 0
            for entry in os.scandir(folder):
                if entry.is_file():
                    os.unlink(entry.path)
                    removed += 1
            return removed

        results = []
        for _ in range(args.rounds):
            make_files()
            floor_seconds, floor_rows = timed(floor)
            make_files()
            sweep_seconds, sweep_rows = timed(lambda: clean_uploads(0).orphans)
            results.append((floor_seconds, sweep_seconds))
    report(
        "attachments", f"{args.files} unowned files", results, "list the folder, unlink each", floor_rows, sweep_rows
    )


def bench_reports(args):
    manager = db.session.scalar(sa.select(User).where(User.role == "manager").order_by(User.username).limit(1))
    member = db.session.scalar(sa.select(User).where(User.role == "member").order_by(User.username).limit(1))

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


BENCHES = {
    "overdue": bench_overdue,
    "reminders": bench_reminders,
    "purge": bench_purge,
    "sla": bench_sla,
    "misuse": bench_misuse,
    "attachments": bench_attachments,
    "reports": bench_reports,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="default: finstack_sweep_bench_<size of --tasks> on the local PostgreSQL")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, help="default: as many as --tasks")
    parser.add_argument("--overdue", type=int, help="overdue tasks to notify (default: a tenth of --tasks)")
    parser.add_argument("--reminders", type=int, help="reminders due (default: a tenth of --tasks)")
    parser.add_argument("--trash", type=int, help="trashed tasks to purge (default: a hundredth of --tasks)")
    parser.add_argument("--files", type=int, default=10_000, help="unowned files for `attachments clean`")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="shape, floor, sweep rounds per sweep (median)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each report call (median)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    args = parser.parse_args()
    args.url = args.url or URL_TEMPLATE.format(size=size_label(args.tasks))
    args.tickets = args.tickets if args.tickets is not None else args.tasks
    args.overdue = args.overdue if args.overdue is not None else args.tasks // 10
    args.reminders = args.reminders if args.reminders is not None else args.tasks // 10
    args.trash = args.trash if args.trash is not None else args.tasks // 100
    parts = [part for part in args.parts.split(",") if part]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if "bench" not in sa.make_url(args.url).database:  # it empties the database: never one an app or the tests use
        parser.error("the database's name must contain 'bench'")

    ensure_database(args.url)
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": args.url, "MAIL_SERVER": None})
    with app.app_context():
        upgrade()
        seed_data(args.users, args.tasks)
        if {"sla", "misuse"} & set(parts):
            seed_tickets(args.tickets)
        for part in parts:
            BENCHES[part](args)
        if SUMMARY:
            print(f"\n{'sweep':<12} {'work':<58} {'sweep s':>9} {'floor s':>9} {'ratio':>7}")
            for name, work, sweep_seconds, floor_seconds, ratio in SUMMARY:
                print(f"{name:<12} {work:<58} {sweep_seconds:>9.3f} {floor_seconds:>9.3f} {ratio:>6.2f}x")
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
