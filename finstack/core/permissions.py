"""Who may do what. Routes, sockets and the CLI ask these functions; nothing else decides.

| action                         | member                    | manager | admin |
|--------------------------------|---------------------------|---------|-------|
| read any task                  | yes                       | yes     | yes   |
| create a task, assign anyone   | yes                       | yes     | yes   |
| update / change status         | creator or assignee       | yes     | yes   |
| delete                         | creator                   | yes     | yes   |
| dashboard scope                | own (created or assigned) | all     | all   |
| read the audit log             | no                        | yes     | yes   |
"""

import sqlalchemy as sa

from finstack.errors import ApiError


def require(allowed, message):
    """Refuse with 403 unless `allowed`."""
    if not allowed:
        raise ApiError(403, message)


def sees_all_tasks(user):
    return user.role in ("admin", "manager")


def can_edit_task(user, task):
    return sees_all_tasks(user) or user.id in (task.created_by, task.contact_person_id)


def can_delete_task(user, task):
    return sees_all_tasks(user) or user.id == task.created_by


def own_tasks_clause(user, task_model):
    """SQL for "tasks this user created or holds" — a member's scope in aggregates."""
    return sa.or_(task_model.created_by == user.id, task_model.contact_person_id == user.id)


def can_read_audit_log(user):
    return sees_all_tasks(user)
