"""Writing and reading the audit log. Entries join the caller's transaction, so they commit with the write.

An entry is linked to the tasks it is about (`audit_log_tasks`), which make up a task's history: an entry about a
task (`entity_type` "task") names it as `entity_id`, or several as `changes["task_ids"]` (a bulk change: one entry,
a link per task); an entry about something of a task's (a comment, an attachment) names it as `changes["task_id"]`.
"""

import uuid

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.orm import Session

from finstack.audit.models import AuditLog, AuditLogTask
from finstack.core.pagination import paginate
from finstack.core.time import utcnow
from finstack.extensions import db


def _jsonable(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):  # e.g. the {"from": ..., "to": ...} pairs `diff` produces
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def diff(record, changes):
    """`{field: {"from": old, "to": new}}` for the fields of `changes` whose value differs on `record`."""
    return {
        field: {"from": _jsonable(getattr(record, field)), "to": _jsonable(value)}
        for field, value in changes.items()
        if getattr(record, field) != value
    }


class SystemActor:
    """An actor that is not a signed-in user (the `flask` CLI): admin rights, no id, shown as `label`."""

    role = "admin"
    id = None
    is_active = True

    def __init__(self, label):
        self.audit_label = label


def _task_ids(entity_type, entity_id, changes):
    if entity_type == "task":
        task_ids = [entity_id] if entity_id is not None else changes.get("task_ids", [])
    else:
        task_ids = [changes["task_id"]] if changes.get("task_id") is not None else []
    return dict.fromkeys(uuid.UUID(str(task_id)) for task_id in task_ids)


def _entry(actor, action, entity_type, entity_id, changes):
    changes = changes or {}
    entry_id, now = uuid.uuid4(), utcnow()
    return AuditLog(
        id=entry_id,
        created_at=now,
        task_links=[
            AuditLogTask(audit_id=entry_id, task_id=task_id, created_at=now)
            for task_id in _task_ids(entity_type, entity_id, changes)
        ],
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "audit_label", None),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes={key: _jsonable(value) for key, value in changes.items()},
        ip_address=request.remote_addr if has_request_context() else None,
    )


def record(actor, action, entity_type, entity_id=None, changes=None):
    """Add an entry to the caller's transaction: it commits, or rolls back, with the write it describes."""
    db.session.add(_entry(actor, action, entity_type, entity_id, changes))


def record_now(actor, action, entity_type, entity_id=None, changes=None):
    """Write an entry in a transaction of its own, committed at once: it survives the request's rollback
    (a failed login, a refused reuse)."""
    with Session(db.engine) as session, session.begin():
        session.add(_entry(actor, action, entity_type, entity_id, changes))


def list_entries(*, page, per_page, cursor=None, action=None, user_id=None, task_id=None, date_from=None, date_to=None):
    conditions = []
    if action:
        conditions.append(AuditLog.action == action)
    if user_id:
        conditions.append(AuditLog.actor_id == user_id)
    if task_id:
        conditions.append(sa.and_(AuditLog.entity_type == "task", AuditLog.entity_id == task_id))
    if date_from:
        conditions.append(AuditLog.created_at >= date_from)
    if date_to:
        conditions.append(AuditLog.created_at <= date_to)
    statement = sa.select(AuditLog).where(*conditions).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


@sa.event.listens_for(Session, "before_flush")
def _append_only(session, flush_context, instances):
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, AuditLog):
            raise RuntimeError("The audit log is append-only")
