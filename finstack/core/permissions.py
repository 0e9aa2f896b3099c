"""Who may do what. Routes, sockets and the CLI ask these functions; nothing else decides.

Global roles, for tasks with no project (a project's tasks: see the second matrix below):

| action                         | member                    | manager | admin |
|--------------------------------|---------------------------|---------|-------|
| read a task                    | yes (private projects: members only) | yes | yes |
| read / post in a task's chat   | yes (whoever reads it)    | yes     | yes   |
| create a task, assign anyone   | yes, but not to an admin  | yes     | yes   |
| update / change status         | creator or assignee       | yes     | yes   |
| delete (to the trash), restore | creator                   | yes     | yes   |
| see a task in the trash        | creator (if readable)     | yes     | yes   |
| bulk delete                    | no                        | yes     | yes   |
| dashboard scope                | own (created or assigned) and readable | all | all |
| read the audit log             | no                        | yes     | yes   |
| view any account               | no                        | yes     | yes   |
| create/change/(de)activate users, reset passwords | no     | no      | yes   |
| productivity report (users)    | own row only (readable tasks) | all | all   |
| team overview report           | no                        | yes     | yes   |
| team performance, workload     | own row (team managers:   | all     | all   |
|                                | their team's, by team_id) |         |       |
| read / add comments on a task  | whoever reads the task    | yes     | yes   |
| edit a comment                 | own (its author only)     | own     | own   |
| delete a comment               | own                       | yes     | yes   |
| list / download / attach files | whoever reads the task    | yes     | yes   |
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


def _access():
    from finstack.projects import access  # the projects package imports this module: import when needed

    return access


def can_read_task(user, task):
    """THE rule for reading a task (and its comments, files, chat thread, events, notifications): an active user
    reads a task with no project, any task if a global manager or admin, and a project's task if the project is
    open or they are a member of it (explicitly or through its team). At most one query.
    `readable_tasks_clause` and `task_readers_clause` say the same in SQL."""
    if user is None or not user.is_active:
        return False
    if task.project_id is None or sees_all_tasks(user):
        return True
    return _access().readable_by_member(task.project_id, user.id)


def task_readers_clause(user_model, task):
    """SQL over `user_model` for the users `can_read_task` lets read `task`; the two must agree."""
    active = user_model.is_active.is_(True)
    if task.project_id is None:
        return active
    access = _access()
    return sa.and_(
        active,
        sa.or_(
            user_model.role.in_(("admin", "manager")),
            access.is_open(task.project_id),
            user_model.id.in_(access.project_member_ids(task.project_id)),
        ),
    )


def readable_tasks_clause(user, task_model):
    """SQL for the tasks `can_read_task` lets `user` read; the two must agree."""
    if user is None or not user.is_active:
        return sa.false()
    if sees_all_tasks(user):
        return sa.true()
    access = _access()
    return sa.or_(
        task_model.project_id.is_(None),
        task_model.project_id.in_(access.open_project_ids()),
        task_model.project_id.in_(access.member_project_ids(user.id)),
    )


def readable_projects_clause(user, project_model):
    """SQL over `project_model` for the projects whose tasks `readable_tasks_clause` lets `user` read (every task
    in no project being readable too); the two must agree."""
    if user is None or not user.is_active:
        return sa.false()
    if sees_all_tasks(user):
        return sa.true()
    access = _access()
    return sa.or_(
        project_model.id.in_(access.open_project_ids()), project_model.id.in_(access.member_project_ids(user.id))
    )


def can_assign_to(user, assignee):
    """Members may assign tasks to anyone but an admin (000's rule)."""
    return sees_all_tasks(user) or assignee.role != "admin"


def _project_role_allows(user, task, own):
    if sees_all_tasks(user):
        return True
    if task.project_id is None:
        return own
    role = _access().role_in_project(task.project_id, user.id)
    return role == "manager" or (role == "member" and own)


def can_edit_task(user, task):
    """Update, change status, move. In a project the project role decides: its managers edit any of its tasks,
    its members the ones they created or hold, viewers (and non-members) none. `editable_tasks_clause` agrees."""
    return _project_role_allows(user, task, user.id in (task.created_by, task.contact_person_id))


def can_delete_task(user, task):
    """As `can_edit_task`, but a member deletes only the tasks they created; also who may restore it from the trash,
    and whose trash listing shows it. `deletable_tasks_clause` agrees."""
    return _project_role_allows(user, task, user.id == task.created_by)


def _project_role_clause(user, task_model, own):
    """SQL twin of `_project_role_allows`."""
    if sees_all_tasks(user):
        return sa.true()
    access = _access()
    return sa.or_(
        sa.and_(task_model.project_id.is_(None), own),
        task_model.project_id.in_(access.project_ids_with_role(user.id, ("manager",))),
        sa.and_(own, task_model.project_id.in_(access.project_ids_with_role(user.id, ("member",)))),
    )


def editable_tasks_clause(user, task_model):
    """SQL for the tasks `can_edit_task` lets `user` change (bulk operations)."""
    return _project_role_clause(user, task_model, own_tasks_clause(user, task_model))


def deletable_tasks_clause(user, task_model):
    """SQL for the tasks `can_delete_task` lets `user` delete (and restore)."""
    return _project_role_clause(user, task_model, task_model.created_by == user.id)

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
# | read its tasks (comments, files, chat)   | yes   | yes            | yes                  | yes    | yes    |
# |   (outsiders: open project yes, private project 404)                                                       |
# | edit / change status of / move its tasks | yes   | yes            | any                  | own or held | no |
# | delete its tasks                         | yes   | yes            | any                  | own (created) | no |
# |   (outsiders, even a task's creator or assignee: no)                                                       |


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
# | read / write its chat (others: 404)                | own       | no                    | yes   | yes  | yes   |
# | read / write internal notes, send `is_ai` replies  | no        | no                    | yes   | yes  | yes   |
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


def ticket_readers_clause(user_model, requester_id, department_id, department_agent):
    """SQL over `user_model` for the users `can_read_ticket` lets read a ticket with `requester_id` in
    `department_id` (columns or values); `department_agent` is the DepartmentAgent model. The two must agree."""
    return sa.or_(
        user_model.role == "admin",
        user_model.id == requester_id,
        sees_department_clause(user_model, department_id, department_agent),
    )


def sees_department_clause(user_model, department_id, department_agent):
    """SQL over `user_model`: holds a role in `department_id` (an agent or lead of it)."""
    return sa.exists().where(department_agent.department_id == department_id, department_agent.user_id == user_model.id)


def readable_tickets_clause(user, ticket_model, agent_departments):
    """SQL for the tickets `can_read_ticket` lets `user` read; the two must agree."""
    if user.role == "admin":
        return sa.true()
    return sa.or_(ticket_model.requester_id == user.id, ticket_model.department_id.in_(agent_departments))


# In-ticket chat: the ticket's conversation is read (and written) by whoever may read the ticket. Internal notes are
# for its staff: the agents and leads of its department, its assignee and admins, but never its requester, whatever
# their other roles (an agent filing a ticket in their own department is its requester there). Only staff send
# internal notes and mark replies as sent from a suggestion (`is_ai`); only staff replies count as responses.


def is_ticket_staff(user, ticket, department_role):
    """Sees and writes internal notes of the ticket's chat; its public replies are the ticket's responses."""
    if is_requester(user, ticket):
        return False
    return user.role == "admin" or department_role is not None or ticket.assignee_id == user.id


def ticket_staff_clause(user, ticket_model, agent_departments):
    """SQL for the tickets `is_ticket_staff` says `user` is staff of; the two must agree."""
    if user.role == "admin":
        return ticket_model.requester_id != user.id
    return sa.and_(
        ticket_model.requester_id != user.id,
        sa.or_(ticket_model.department_id.in_(agent_departments), ticket_model.assignee_id == user.id),
    )


def visible_messages_clause(message_model, sees_internal):
    """SQL for the messages of a conversation its reader sees: internal notes only for the ticket's staff."""
    return sa.true() if sees_internal else message_model.internal.is_(False)


def can_see_routing(user, department_role):
    return user.role == "admin" or department_role is not None


def routing_viewers_clause(user_model, department_id, department_agent):
    """SQL over `user_model` for the users `can_see_routing` lets see a ticket's routing in `department_id`; the two
    must agree."""
    return sa.or_(user_model.role == "admin", sees_department_clause(user_model, department_id, department_agent))


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


# Knowledge base: agents (of any department) and admins write articles and read drafts; everyone reads published ones.
# `is_agent`: the user works in at least one department.


def can_write_kb_article(user, is_agent):
    return user.role == "admin" or is_agent


def can_read_kb_article(user, article, is_agent):
    return article.status == "published" or can_write_kb_article(user, is_agent)


def readable_kb_articles_clause(user, article_model, is_agent):
    """SQL for the articles `can_read_kb_article` lets `user` read; the two must agree."""
    if can_write_kb_article(user, is_agent):
        return sa.true()
    return article_model.status == "published"


# The helpdesk report (finstack/reports/helpdesk.py): admins see every department, leads the departments they lead.
def can_see_helpdesk_report(user, leads):
    """`leads`: the user leads the department asked for (or, for the whole report, at least one)."""
    return user.role == "admin" or leads


def helpdesk_report_departments_clause(user, department_model, lead_departments):
    """SQL for the departments the report shows `user`; agrees with `can_see_helpdesk_report`."""
    if user.role == "admin":
        return sa.true()
    return department_model.id.in_(lead_departments)
