"""Who may do what. Routes, sockets and the CLI ask these functions; nothing else decides.

| action                         | member                    | manager | admin |
|--------------------------------|---------------------------|---------|-------|
| read any task                  | yes                       | yes     | yes   |
| read / post in a task's chat   | yes (whoever reads it)    | yes     | yes   |
| create a task, assign anyone   | yes, but not to an admin  | yes     | yes   |
| update / change status         | creator or assignee       | yes     | yes   |
| delete (to the trash), restore | creator                   | yes     | yes   |
| see a task in the trash        | creator (if readable)     | yes     | yes   |
| bulk delete                    | no                        | yes     | yes   |
| dashboard scope                | own (created or assigned) | all     | all   |
| read the audit log             | no                        | yes     | yes   |
| view any account               | no                        | yes     | yes   |
| create/change/(de)activate users, reset passwords | no     | no      | yes   |
| productivity report (users)    | own row only              | all     | all   |
| team overview report           | no                        | yes     | yes   |
| team performance, workload     | own row (team managers:   | all     | all   |
|                                | their team's, by team_id) |         |       |
| read / add comments on a task  | yes                       | yes     | yes   |
| edit a comment                 | own (its author only)     | own     | own   |
| delete a comment               | own                       | yes     | yes   |
| list / download / attach files | yes                       | yes     | yes   |
| delete an attachment           | own (its uploader)        | yes     | yes   |
"""

import sqlalchemy as sa

from finstack.errors import ApiError


def require(allowed, message):
    """Refuse with 403 unless `allowed`."""
    if not allowed:
        raise ApiError(403, message)


def sees_all_tasks(user):
    return user.role in ("admin", "manager")


def can_read_task(user, task):
    """Every authenticated user reads every task (the 003 contract). A function, so the rule can tighten later:
    task chat threads (their members are exactly the task's readers) and `join_task` ask it."""
    return user is not None and user.is_active


def task_readers_clause(user_model, task):
    """SQL over `user_model` for the users `can_read_task` lets read `task`; the two must agree."""
    return user_model.is_active.is_(True)


def readable_tasks_clause(user, task_model):
    """SQL for the tasks `can_read_task` lets `user` read; the two must agree (today: every task, if active)."""
    return sa.true() if user is not None and user.is_active else sa.false()


def can_assign_to(user, assignee):
    """Members may assign tasks to anyone but an admin (000's rule)."""
    return sees_all_tasks(user) or assignee.role != "admin"


def can_edit_task(user, task):
    return sees_all_tasks(user) or user.id in (task.created_by, task.contact_person_id)


def can_delete_task(user, task):
    """Also who may restore it from the trash, and whose trash listing shows it."""
    return sees_all_tasks(user) or user.id == task.created_by


def deletable_tasks_clause(user, task_model):
    """SQL for the tasks `can_delete_task` lets `user` delete (and restore); the two must agree."""
    return sa.true() if sees_all_tasks(user) else task_model.created_by == user.id


def own_tasks_clause(user, task_model):
    """SQL for "tasks this user created or holds" — a member's scope in aggregates."""
    return sa.or_(task_model.created_by == user.id, task_model.contact_person_id == user.id)


def can_administer_users(user):
    """Create accounts, change roles, reset passwords, (de)activate: admins only."""
    return user.role == "admin"


def can_read_audit_log(user):
    return sees_all_tasks(user)


def can_view_user_report(user, subject_id):
    """May `user` see the productivity figures of `subject_id` (None: of every user)?

    Managers and admins see anyone's; members only their own.
    """
    return sees_all_tasks(user) or subject_id == user.id


def can_view_team_reports(user):
    return sees_all_tasks(user)


def can_view_others_workload(user, team_role=None):
    """The team-performance and workload rows of people other than oneself: managers and admins see everyone's;
    asked about a team (`team_role` is the user's role in it), the team's managers see its members' rows too."""
    return sees_all_tasks(user) or team_role == "manager"


def workload_rows_clause(user, assignee_column, team_role=None, team_member_ids=None):
    """SQL over `assignee_column` for the rows `can_view_others_workload` lets `user` see; the two must agree:
    everyone's, the team's members' (`team_member_ids` selects them; asked about a team), or one's own."""
    if sees_all_tasks(user):
        return sa.true()
    if can_view_others_workload(user, team_role):
        return assignee_column.in_(team_member_ids)
    return assignee_column == user.id


def can_edit_comment(user, comment):
    """Words stay their author's: nobody else edits a comment, whatever their role."""
    return user.id == comment.author_id


def can_delete_comment(user, comment):
    return sees_all_tasks(user) or user.id == comment.author_id


def can_delete_attachment(user, attachment):
    return sees_all_tasks(user) or user.id == attachment.uploader_id


# --- Teams and projects -------------------------------------------------------------------------------------
# `team_role` / `project_role` is the user's role there (None: not a member); the services compute it in SQL.
#
# | action                                   | admin | global manager | team/project manager | member | viewer |
# |------------------------------------------|-------|----------------|----------------------|--------|--------|
# | create a team                            | yes   | yes            | -                    | no     | -      |
# | read a team, list its members            | yes   | if in it       | yes                  | yes    | -      |
# | change a team, its members; delete it    | yes   | if its manager | yes                  | no     | -      |
# | create a project                         | yes   | yes            | -                    | no     | -      |
# | read an open project                     | yes   | yes            | yes                  | yes    | yes    |
# | read a private project                   | yes   | yes            | yes                  | yes    | yes    |
# |   (outsiders of a private project: 404)  |       |                |                      |        |        |
# | change a project, its members; delete it | yes   | yes            | yes                  | no     | no     |
# | put a task in a project                  | yes   | yes            | yes                  | yes    | no     |


def can_create_team(user):
    return sees_all_tasks(user)


def can_read_team(user, team_role):
    return user.role == "admin" or team_role is not None


def can_manage_team(user, team_role):
    return user.role == "admin" or team_role == "manager"


def can_create_project(user):
    return sees_all_tasks(user)


def can_read_project(user, project, project_role):
    return sees_all_tasks(user) or project.visibility == "open" or project_role is not None


def can_manage_project(user, project_role):
    return sees_all_tasks(user) or project_role == "manager"


def can_add_task_to_project(user, project_role):
    """Viewers read a project; its managers and members (and global managers, admins) put tasks in it."""
    return sees_all_tasks(user) or project_role in ("manager", "member")


def visible_projects_clause(user, project_model, member_project_ids):
    """SQL for the projects `can_read_project` lets `user` read; `member_project_ids` selects the ids of the
    projects the user is a member of (explicitly or through a team). The two must agree."""
    if sees_all_tasks(user):
        return sa.true()
    return sa.or_(project_model.visibility == "open", project_model.id.in_(member_project_ids))


# --- Helpdesk -----------------------------------------------------------------------------------------------
# `department_role` is the user's role in the ticket's (or the listed) department: "agent", "lead" or None;
# `agent_departments` selects the ids of the departments the user works in. The services compute both in SQL.
#
# | action                                             | requester | agent of another dept | agent | lead | admin |
# |----------------------------------------------------|-----------|-----------------------|-------|------|-------|
# | read a ticket (others: 404), its list              | own       | no                    | yes   | yes  | yes   |
# | see the routing decision and its reason            | no        | no                    | yes   | yes  | yes   |
# | edit title/description/urgency (while open)        | own       | no                    | no    | no   | no    |
# | change the status (working statuses)               | no        | no                    | yes   | yes  | yes   |
# | close a resolved ticket, reopen within the window  | own       | no                    | no    | no   | no    |
# | assign                                             | no        | no                    | no    | yes  | yes   |
# | re-route to another department                     | no        | no                    | yes   | yes  | yes   |
# | give feedback (once, resolved or closed)           | own       | no                    | no    | no   | no    |
# | list a department's agents                         | no        | no                    | yes   | yes  | yes   |
# | departments, agents, routing rules, blocked terms, release or reject held tickets | no | no | no | no | yes |


def can_administer_helpdesk(user):
    return user.role == "admin"


def can_read_ticket(user, ticket, department_role):
    return user.role == "admin" or ticket.requester_id == user.id or department_role is not None


def readable_tickets_clause(user, ticket_model, agent_departments):
    """SQL for the tickets `can_read_ticket` lets `user` read; the two must agree."""
    if user.role == "admin":
        return sa.true()
    return sa.or_(ticket_model.requester_id == user.id, ticket_model.department_id.in_(agent_departments))


def can_see_routing(user, department_role):
    return user.role == "admin" or department_role is not None


def can_work_ticket(user, department_role):
    return user.role == "admin" or department_role is not None


def is_requester(user, ticket):
    """Editing the text, reopening and feedback are the requester's own, whatever their other roles."""
    return ticket.requester_id == user.id


def can_set_ticket_status(user, ticket, department_role, allowed_to):
    """`allowed_to` is what the transition table says of the move: "staff", "requester" or "anyone" (of the two)."""
    staff = can_work_ticket(user, department_role)
    requester = is_requester(user, ticket)
    return {"staff": staff, "requester": requester, "anyone": staff or requester}[allowed_to]


def can_assign_ticket(user, department_role):
    return user.role == "admin" or department_role == "lead"


def can_list_department_agents(user, department_role):
    return user.role == "admin" or department_role is not None
