"""Bulk-insert demo users and tasks: many rows per INSERT, one commit per chunk."""

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


def task_rows(count, user_ids, rng, now):
    """`count` plausible tasks spread over the past two years and the next month."""
    rows = []
    for _ in range(count):
        created = now - timedelta(seconds=rng.randint(0, 730 * 86400))
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
    now = utcnow()
    for offset in range(0, count, chunk_size):
        size = min(chunk_size, count - offset)
        db.session.execute(sa.insert(Task), task_rows(size, user_ids, rng, now))
        db.session.commit()
        if progress is not None:
            progress(size)


def make_rng(seed):
    return random.Random(seed)
