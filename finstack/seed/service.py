"""Bulk-insert demo users and tasks: COPY on PostgreSQL, many rows per INSERT elsewhere, one commit per chunk."""

import io
import random
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import generate_password_hash

from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.tasks.models import PRIORITIES, STATUSES, Task
from finstack.users.models import User

DEMO_PASSWORD = "demo-password"
TASK_TYPES = (
    "Follow-up Call",
    "Meeting",
    "Tax Filing",
    "Audit Review",
    "Invoice",
    "Payroll",
    "KYC Check",
    "Reconciliation",
    "Client Onboarding",
    "Quarterly Report",
    "Loan Review",
    "Compliance",
)
ENTITIES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Oscorp",
    "Pied Piper",
    "Massive Dynamic",
    "Aperture",
    "Gringotts",
    "Dunder Mifflin",
)
SUFFIXES = ("Ltd", "LLC", "Corporation", "Holdings", "& Co", "Group", "Partners")
HISTORY_SECONDS = 730 * 86400  # demo tasks were created over the past two years
DEPARTMENTS = ("sales", "operations", "marketing", "accounts", "IT", "HR")


def seed_users(count, rng):
    """Add `count` demo users (every tenth a manager) sharing one password; returns their ids."""
    start = db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username.like("demo%")))
    password_hash = generate_password_hash(DEMO_PASSWORD, method=current_app.config["PASSWORD_HASH_METHOD"])
    now = utcnow()
    rows = []
    for number in range(start + 1, start + count + 1):
        rows.append(
            {
                "id": uuid.uuid4(),
                "username": f"demo{number:06d}",
                "email": f"demo{number:06d}@demo.finstack.test",
                "password_hash": password_hash,
                "full_name": f"Demo User {number}",
                "role": "manager" if number % 10 == 0 else "member",
                "department": rng.choice(DEPARTMENTS),
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        db.session.execute(sa.insert(User), rows)
        db.session.commit()
    return [row["id"] for row in rows]


def task_rows(count, user_ids, rng, now, newest=0, oldest=HISTORY_SECONDS):
    """`count` plausible tasks created `newest` to `oldest` seconds before `now`, oldest first, each due up to 90 days
    after its creation."""
    ages = sorted((rng.randint(newest, oldest) for _ in range(count)), reverse=True)
    rows = []
    for age in ages:
        created = now - timedelta(seconds=age)
        task_time = created + timedelta(seconds=rng.randint(3600, 90 * 86400))
        status = rng.choices(STATUSES, weights=(35, 15, 40, 10))[0]
        rows.append(
            {
                "id": uuid.uuid4(),
                "entity_name": f"{rng.choice(ENTITIES)} {rng.choice(SUFFIXES)}",
                "task_type": rng.choice(TASK_TYPES),
                "task_time": task_time,
                "contact_person_id": rng.choice(user_ids),
                "note": None,
                "status": status,
                "priority": rng.choice(PRIORITIES),
                "created_by": rng.choice(user_ids),
                "date_created": created,
                "updated_at": created,
                "closed_at": min(task_time, now) if status == "closed" else None,
                "version": 1,
            }
        )
    return rows


def seed_tasks(count, user_ids, rng, chunk_size=10_000, progress=None):
    """Add `count` tasks over the past two years, in creation order as a real table fills, one commit per chunk.

    Creation order keeps the date indexes growing at their right edge instead of splitting pages all over them.
    """
    now = utcnow()
    for offset in range(0, count, chunk_size):
        size = min(chunk_size, count - offset)
        oldest = HISTORY_SECONDS * (count - offset) // count
        newest = HISTORY_SECONDS * (count - offset - size) // count
        insert_rows(Task.__table__, task_rows(size, user_ids, rng, now, newest, oldest))
        db.session.commit()
        if progress is not None:
            progress(size)


def insert_rows(table, rows):
    """Insert `rows` (dicts with the same keys) into `table` in the session's transaction, as fast as the driver can.

    Not the ORM bulk insert: it leaves None values out and groups rows by the columns they set, so tasks with and
    without `closed_at` alternated and each INSERT carried about two rows. Core's executemany sends up to 1,000 rows
    per INSERT; on PostgreSQL with psycopg2, COPY also skips SQLAlchemy's per-value processing (4x less client CPU).
    """
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg2":
        _copy_rows(connection, table, rows)
    else:
        connection.execute(sa.insert(table), rows)


def _copy_value(value):
    """One field in COPY's text format. Datetimes are aware (UTC), which `timestamptz` reads as they are."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return str(value)


def _copy_rows(connection, table, rows):
    columns = list(rows[0])
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join([_copy_value(row[column]) for column in columns]))
        buffer.write("\n")
    buffer.seek(0)
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(column) for column in columns)}) FROM STDIN"
    with connection.connection.cursor() as cursor:
        cursor.copy_expert(statement, buffer)


def make_rng(seed):
    return random.Random(seed)
