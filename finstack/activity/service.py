"""Activity: the audit log read per task (through its task links) and per actor; one indexed query per page."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from finstack.audit.models import AuditLog, AuditLogTask
from finstack.core.pagination import paginate
from finstack.tasks import service as tasks


def _item(entry):
    # A bulk entry lists every task it touched: in one task's history the others are not the reader's business.
    return {
        "id": entry.id,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "actor": entry.actor,
        "actor_label": entry.actor_label,
        "changes": {key: value for key, value in entry.changes.items() if key != "task_ids"},
        "created_at": entry.created_at,
    }


def task_activity(actor, task_id, *, page, per_page, cursor=None):
    task = tasks.get_readable_task(actor, task_id)
    links = sa.select(AuditLogTask.audit_id).where(AuditLogTask.task_id == task.id)
    statement = (
        sa.select(AuditLog)
        .join(AuditLogTask, AuditLogTask.audit_id == AuditLog.id)
        .where(AuditLogTask.task_id == task.id)
        .options(joinedload(AuditLog.actor))
        .order_by(AuditLogTask.created_at.desc(), AuditLogTask.audit_id.desc())
    )
    result = paginate(statement, page=page, per_page=per_page, cursor=cursor, count_statement=links)
    return {**result, "items": [_item(entry) for entry in result["items"]]}


def my_activity(actor, *, page, per_page, cursor=None, action=None, entity_type=None, date_from=None, date_to=None):
    conditions = [AuditLog.actor_id == actor.id]
    if action:
        conditions.append(AuditLog.action == action)
    if entity_type:
        conditions.append(AuditLog.entity_type == entity_type)
    if date_from:
        conditions.append(AuditLog.created_at >= date_from)
    if date_to:
        conditions.append(AuditLog.created_at <= date_to)
    statement = (
        sa.select(AuditLog)
        .where(*conditions)
        .options(joinedload(AuditLog.actor))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    )
    count = sa.select(AuditLog.id).where(*conditions)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor, count_statement=count)
