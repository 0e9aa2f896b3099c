"""Every documented filter and sort of the large lists is served by an index (PostgreSQL).

One schema per module: 20,000 tasks (with tags, users, projects), 10,000 tickets, 20,000 notifications, audit entries,
directory users and chat messages inserted set-based, then VACUUM ANALYZE, so the planner has real statistics and
tables where reading them whole costs more than an index. Each case sends the real request (as a user who sees
everything and as a plain member, whose reads carry the visibility rule), captures the statements the service issues
over the table (the bounded count and the page), runs them under EXPLAIN ANALYZE and fails on a sequential scan that
reads the whole table (the one exception, a count stopped early by its limit, is explained at EXACT_LIMIT). Filter
values are selective as real ones are (an assignee, a day, a name fragment of at least three characters: a trigram
index serves only those, see README "Task list filters").
"""

import os
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from finstack import create_app
from finstack.chat.models import Conversation, ConversationMember
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.projects.models import Project, ProjectMember
from finstack.tasks import service as tasks
from finstack.tasks.models import Task
from finstack.teams.models import Team
from finstack.tickets.models import Department, DepartmentAgent
from finstack.users import service as users
from tests.plans import explain, explain_tree, full_scans, issued_statements, seq_scans

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="query plans are PostgreSQL's: set TEST_DATABASE_URL (SQLite keeps its scans at embedded sizes)",
)

TASKS = 20_000
USERS = 30
PROJECTS = 20
DEPARTMENTS = 10
# The bounded count's limit, scaled with the table: 20,000 / 1,000 is the ratio of 200,000 tasks to the default
# 10,000. A filter matching more rows than the limit may be counted by a sequential scan that stops after limit + 1
# matches: it reads about (limit + 1) / selectivity rows whatever the table's size, so `full_scans` accepts a Seq
# Scan under a Limit that really stopped before the table's end (EXPLAIN ANALYZE says how many rows it read). The
# same plan over a filter that matches fewer rows than the planner guessed reads everything, and fails.
EXACT_LIMIT = 1000

SEED_TASKS = """
INSERT INTO tasks (id, entity_name, task_type, task_time, contact_person_id, note, status, priority, created_by,
                   date_created, updated_at, version, project_id, deleted_at)
SELECT gen_random_uuid(), 'Company w' || (n % 997), 'Kind ' || (n % 40),
       CASE WHEN n % 4 < 2 AND n % 100 <> 0 THEN now() + ((n * 7) % 43200 + 60) * interval '1 minute'
            ELSE now() - ((n * 7) % 43200 + 60) * interval '1 minute' END,
       (CAST(:users AS uuid[]))[n % :user_count + 1], 'about v' || (n % 101),
       (ARRAY['open', 'in_progress', 'closed', 'cancelled'])[n % 4 + 1], (ARRAY['low', 'medium', 'high'])[n % 3 + 1],
       (CAST(:users AS uuid[]))[(n * 7) % :user_count + 1],
       now() - n * interval '1 minute', now() - ((n * 13) % :tasks) * interval '1 minute', 1,
       CASE WHEN n % 3 = 0 THEN NULL ELSE (CAST(:projects AS uuid[]))[n % :project_count + 1] END,
       CASE WHEN n % 101 = 0 THEN now() END
FROM generate_series(1, :tasks) AS n
"""
TICKETS = 10_000
# The newest ones are still being worked on; a few of them missed their first-response target, and one in 97 of all
# tickets has a breach on record.
ACTIVE_TICKETS = 1_000
SEED_TICKETS = """
INSERT INTO tickets (id, number, title, description, urgency, status, requester_id, department_id, assignee_id,
                     misuse_flag, created_at, updated_at, first_response_due_at, resolution_due_at,
                     first_responded_at, first_response_breached_at)
SELECT gen_random_uuid(), n, 'Printer w' || (n % 997), 'It jams on page v' || (n % 101),
       (ARRAY['low', 'medium', 'high', 'critical'])[n % 4 + 1],
       CASE WHEN n <= :active_tickets THEN (ARRAY['open', 'assigned', 'in_progress', 'waiting_on_requester'])[n % 4 + 1]
            ELSE (ARRAY['resolved', 'closed'])[n % 2 + 1] END,
       (CAST(:users AS uuid[]))[(n * 7) % :user_count + 1], (CAST(:departments AS uuid[]))[n % :department_count + 1],
       CASE WHEN n % 6 > 0 THEN (CAST(:users AS uuid[]))[n % :user_count + 1] END, false,
       now() - n * interval '1 minute', now() - ((n * 13) % :tickets) * interval '1 minute',
       now() - n * interval '1 minute' + interval '1 day', now() - n * interval '1 minute' + interval '3 days',
       CASE WHEN n % 6 > 0 THEN now() - n * interval '1 minute' + interval '1 hour' END,
       CASE WHEN n % 97 = 0 THEN now() - n * interval '1 minute' + interval '1 day' END
FROM generate_series(1, :tickets) AS n
"""
NOTIFICATIONS = 20_000
SEED_NOTIFICATIONS = """
INSERT INTO notifications (id, user_id, type, title, message, is_read, count, created_at)
SELECT gen_random_uuid(), (CAST(:users AS uuid[]))[n % :user_count + 1], 'task_assigned', 'Task assigned', 'Yours',
       n % 7 <> 0, 1, now() - n * interval '1 minute'
FROM generate_series(1, :notifications) AS n
"""
AUDIT_ENTRIES = 20_000
SEED_AUDIT = """
INSERT INTO audit_logs (id, actor_id, action, entity_type, entity_id, changes, created_at)
SELECT gen_random_uuid(), (CAST(:users AS uuid[]))[n % :user_count + 1],
       (ARRAY['task.create', 'task.update', 'task.trash', 'comment.create', 'user.login'])[n % 5 + 1],
       'task', (CAST(:tasks_sample AS uuid[]))[n % 100 + 1], '{}', now() - n * interval '1 minute'
FROM generate_series(1, :audit_entries) AS n
"""
DIRECTORY = 20_000
# More people for the directory search, with the seeded users' password hash (never used to sign in).
SEED_DIRECTORY = """
INSERT INTO users (id, username, email, password_hash, full_name, role, is_active, token_version, timezone,
                   created_at, updated_at)
SELECT gen_random_uuid(), 'person' || n, 'person' || n || '@corp' || (n % 97) || '.example', :password_hash,
       'Person w' || (n % 997) || ' Staff', 'member', n % 50 <> 0, 0, 'UTC', now(), now()
FROM generate_series(1, :directory) AS n
"""
GROUPS = 20
MESSAGES = 20_000
# Group conversations, and messages spread over them, newest last.
SEED_MESSAGES = """
INSERT INTO messages (id, conversation_id, sender_id, content, is_pinned, internal, is_ai, created_at)
SELECT gen_random_uuid(), (CAST(:conversations AS uuid[]))[n % :group_count + 1],
       (CAST(:users AS uuid[]))[n % :user_count + 1], 'note about w' || (n % 997) || ' and v' || (n % 101), false,
       false, false, now() - (:messages - n) * interval '1 minute'
FROM generate_series(1, :messages) AS n
"""
# What VACUUM ANALYZE visits after the seed (this schema's tables only, not the whole database's).
SEEDED_TABLES = (
    "users",
    "teams",
    "projects",
    "project_members",
    "departments",
    "department_agents",
    "tasks",
    "task_tags",
    "tickets",
    "notifications",
    "audit_logs",
    "conversations",
    "conversation_members",
    "messages",
)
# One task in about 16 carries one of 50 tags.
SEED_TAGS = """
INSERT INTO task_tags (task_id, tag)
SELECT id, 'tag' || (('x' || substr(id::text, 1, 2))::bit(8)::int % 50) FROM tasks WHERE substr(id::text, 3, 1) = 'a'
"""


def _seed():
    people = [
        users.create_user(
            username=f"plan{number}",
            email=f"plan{number}@example.com",
            password="correct-horse-battery",
            full_name=f"Planner {number}",
            role={0: "manager", 2: "admin"}.get(number, "member"),
        )
        for number in range(USERS)
    ]
    manager, member, admin = people[0], people[1], people[2]
    team = Team(name="Planners", created_by=manager.id)
    db.session.add(team)
    db.session.flush()
    projects = [
        Project(
            key=f"PL{number}",
            name=f"Plan {number}",
            created_by=manager.id,
            visibility="open" if number % 2 else "private",
            team_id=team.id if number == 1 else None,
        )
        for number in range(PROJECTS)
    ]
    db.session.add_all(projects)
    db.session.flush()
    db.session.add(ProjectMember(project_id=projects[2].id, user_id=member.id, role="member"))
    departments = [Department(name=f"Desk {number}") for number in range(DEPARTMENTS)]
    db.session.add_all(departments)
    db.session.flush()
    # The member is also an agent of one department: the tickets they read are theirs and that desk's.
    db.session.add(DepartmentAgent(department_id=departments[2].id, user_id=member.id, role="agent"))
    everyone = {"users": [str(person.id) for person in people], "user_count": USERS}
    db.session.execute(
        sa.text(SEED_TASKS),
        {
            **everyone,
            "projects": [str(project.id) for project in projects],
            "project_count": PROJECTS,
            "tasks": TASKS,
        },
    )
    db.session.execute(sa.text(SEED_TAGS))
    db.session.execute(
        sa.text(SEED_TICKETS),
        {
            **everyone,
            "departments": [str(department.id) for department in departments],
            "department_count": DEPARTMENTS,
            "tickets": TICKETS,
            "active_tickets": ACTIVE_TICKETS,
        },
    )
    db.session.execute(sa.text(SEED_NOTIFICATIONS), {**everyone, "notifications": NOTIFICATIONS})
    db.session.execute(sa.text(SEED_DIRECTORY), {"password_hash": manager.password_hash, "directory": DIRECTORY})
    groups = [Conversation(kind="group", name=f"Group {number}", created_by=manager.id) for number in range(GROUPS)]
    db.session.add_all(groups)
    db.session.flush()
    # The member is in three of the groups.
    db.session.add_all(ConversationMember(conversation_id=group.id, user_id=member.id) for group in groups[:3])
    db.session.execute(
        sa.text(SEED_MESSAGES),
        {
            **everyone,
            "conversations": [str(group.id) for group in groups],
            "group_count": GROUPS,
            "messages": MESSAGES,
        },
    )
    tasks_sample = db.session.scalars(sa.text("SELECT id::text FROM tasks LIMIT 100")).all()
    db.session.execute(sa.text(SEED_AUDIT), {**everyone, "tasks_sample": tasks_sample, "audit_entries": AUDIT_ENTRIES})
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM ANALYZE {', '.join(SEEDED_TABLES)}")
    return SimpleNamespace(
        manager=manager,
        member=member,
        admin=admin,
        people=people,
        projects=projects,
        team=team,
        departments=departments,
        tasks_sample=tasks_sample,
        groups=groups,
    )


@pytest.fixture(scope="module")
def world(database_url):
    app = create_app(
        {"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, "PAGINATION_EXACT_LIMIT": EXACT_LIMIT}
    )
    with app.app_context():
        seeded = _seed()
        seeded.client = app.test_client()
        yield seeded
        db.session.remove()
        # One TRUNCATE: row by row, each deleted user would be looked for in every table referring to users.
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(table.name for table in db.metadata.sorted_tables)}")
        db.engine.dispose()


def _issued_plans(world, role, path, params, table):
    """The statements `GET path?params` issues over `table` for the `role` (manager or member), each with its plan
    as text and as a tree; the list must not be empty (a case that finds nothing would prove little)."""
    user = getattr(world, role)
    headers = {"Authorization": f"Bearer {create_access_token(identity=str(user.id))}"}
    with issued_statements(db.engine, lambda statement: f"FROM {table}" in statement) as issued:
        response = world.client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["items"], f"{path} {params} lists nothing"
    assert issued, f"no statement over {table}"
    return [
        (statement, explain(db.engine, statement, parameters), explain_tree(db.engine, statement, parameters))
        for statement, parameters in issued
    ]


def assert_no_full_scan(plans, table):
    table_rows = db.session.scalar(sa.select(sa.func.count()).select_from(sa.table(table)))
    db.session.rollback()
    for statement, plan, tree in plans:
        assert not full_scans(tree, table, table_rows), f"{statement}\n{plan}"


# Each documented filter of GET /api/tasks (README "Task list filters"), with the default sort (newest first).
TASK_FILTERS = {
    "status": lambda w: {"status": "open"},
    "priority": lambda w: {"priority": "high"},
    "contact_person_id": lambda w: {"contact_person_id": str(w.people[5].id)},
    "created_by": lambda w: {"created_by": str(w.people[6].id)},
    "task_type": lambda w: {"task_type": "kind 17"},
    "entity_name": lambda w: {"entity_name": "pany w123"},
    "date_from+date_to": lambda w: {"date_from": _ago(days=3), "date_to": _ago(days=2)},
    "date_from": lambda w: {"date_from": _ago(days=1)},
    "due_from+due_to": lambda w: {"due_from": _ahead(days=3), "due_to": _ahead(days=4)},
    "q": lambda w: {"q": "w123 v1"},
    "project_id": lambda w: {"project_id": str(w.projects[2].id)},
    "team_id": lambda w: {"team_id": str(w.team.id)},
    "tag": lambda w: {"tag": "tag7"},
    "overdue=true": lambda w: {"overdue": "true"},
    "overdue=false": lambda w: {"overdue": "false"},
    "no_project=true": lambda w: {"no_project": "true"},
    "no_project=false": lambda w: {"no_project": "false"},
    "contact_person_id+sort_by=task_time": lambda w: {
        "contact_person_id": str(w.people[5].id),
        "sort_by": "task_time",
    },
    "q+sort_by=relevance": lambda w: {"q": "w123 v1", "sort_by": "relevance"},
}
TASK_SORTS = ("date_created", "task_time", "entity_name", "task_type", "status", "priority", "updated_at")
ROLES = ("manager", "member")


def _ago(days):
    return (utcnow() - timedelta(days=days)).isoformat()


def _ahead(days):
    return _ago(-days)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", TASK_FILTERS)
def test_each_task_filter_reads_an_index(world, role, name):
    assert_no_full_scan(_issued_plans(world, role, "/api/tasks", TASK_FILTERS[name](world), "tasks"), "tasks")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sort_order", ("asc", "desc"))
@pytest.mark.parametrize("sort_by", TASK_SORTS)
def test_each_task_sort_reads_an_index(world, role, sort_by, sort_order):
    params = {"sort_by": sort_by, "sort_order": sort_order}
    assert_no_full_scan(_issued_plans(world, role, "/api/tasks", params, "tasks"), "tasks")


# GET /api/tickets (README "Helpdesk"): each filter with the default sort (newest first), then each sort; as an admin
# (who reads every ticket) and as a member who is an agent of one department (their tickets and that desk's).
TICKET_FILTERS = {
    "status": lambda w: {"status": "open"},
    "department_id": lambda w: {"department_id": str(w.departments[2].id)},
    "assignee_id": lambda w: {"assignee_id": str(w.people[22].id)},
    "urgency": lambda w: {"urgency": "critical"},
    "mine": lambda w: {"mine": "true"},
    "breached=true": lambda w: {"breached": "true"},
    "breached=false": lambda w: {"breached": "false"},
    "q": lambda w: {"q": "w123"},
    "q+sort_by=relevance": lambda w: {"q": "w123", "sort_by": "relevance"},
}
TICKET_SORTS = ("created_at", "updated_at", "number", "urgency", "status")
TICKET_ROLES = ("admin", "member")


@pytest.mark.parametrize("role", TICKET_ROLES)
@pytest.mark.parametrize("name", TICKET_FILTERS)
def test_each_ticket_filter_reads_an_index(world, role, name):
    assert_no_full_scan(_issued_plans(world, role, "/api/tickets", TICKET_FILTERS[name](world), "tickets"), "tickets")


@pytest.mark.parametrize("role", TICKET_ROLES)
@pytest.mark.parametrize("sort_order", ("asc", "desc"))
@pytest.mark.parametrize("sort_by", TICKET_SORTS)
def test_each_ticket_sort_reads_an_index(world, role, sort_by, sort_order):
    params = {"sort_by": sort_by, "sort_order": sort_order}
    assert_no_full_scan(_issued_plans(world, role, "/api/tickets", params, "tickets"), "tickets")


# GET /api/notifications (unread_only; since: the catch-up after a notification) and GET /api/audit-logs (action,
# user_id, task_id, date_from/date_to), each read by the users who may: the member their own notifications, the
# manager the audit trail.
NOTIFICATION_FILTERS = {
    "inbox": lambda w: {},
    "unread_only": lambda w: {"unread_only": "true"},
}
AUDIT_FILTERS = {
    "all": lambda w: {},
    "action": lambda w: {"action": "task.trash"},
    "user_id": lambda w: {"user_id": str(w.people[4].id)},
    "task_id": lambda w: {"task_id": w.tasks_sample[3]},
    "date_from+date_to": lambda w: {"date_from": _ago(days=3), "date_to": _ago(days=2)},
}


@pytest.mark.parametrize("name", NOTIFICATION_FILTERS)
def test_each_notification_filter_reads_an_index(world, name):
    plans = _issued_plans(world, "member", "/api/notifications", NOTIFICATION_FILTERS[name](world), "notifications")
    assert_no_full_scan(plans, "notifications")


def test_notification_catch_up_reads_an_index(world):
    since = db.session.scalar(
        sa.text("SELECT id::text FROM notifications WHERE user_id = :user ORDER BY created_at LIMIT 1 OFFSET 500"),
        {"user": str(world.member.id)},
    )
    plans = _issued_plans(world, "member", "/api/notifications", {"since": since}, "notifications")
    assert_no_full_scan(plans, "notifications")


@pytest.mark.parametrize("name", AUDIT_FILTERS)
def test_each_audit_log_filter_reads_an_index(world, name):
    plans = _issued_plans(world, "manager", "/api/audit-logs", AUDIT_FILTERS[name](world), "audit_logs")
    assert_no_full_scan(plans, "audit_logs")


# The user directory's `search` (GET /api/users, names and e-mail, with a trigram index each) and the chat: message
# search (GET /api/chat/search, the text with a trigram index) and a conversation's history (its own cursor).
DIRECTORY_SEARCHES = {
    "full_name": "son w123 sta",
    "email": "corp42.exam",
    "username": "person1234",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", DIRECTORY_SEARCHES)
def test_each_directory_search_reads_an_index(world, role, name):
    plans = _issued_plans(world, role, "/api/users", {"search": DIRECTORY_SEARCHES[name]}, "users")
    assert_no_full_scan(plans, "users")


def test_chat_search_reads_an_index(world):
    plans = _issued_plans(world, "member", "/api/chat/search", {"q": "about w123 "}, "messages")
    assert_no_full_scan(plans, "messages")


@pytest.mark.parametrize("params", [{}, {"limit": 100}], ids=["latest", "limit=100"])
def test_chat_history_reads_an_index(world, params):
    path = f"/api/chat/conversations/{world.groups[1].id}/messages"
    assert_no_full_scan(_issued_plans(world, "member", path, params, "messages"), "messages")


def test_the_purge_deletes_its_batch_through_the_primary_key(world):
    """The trash purge names its batch by a SELECT of the locked ids (`core.locks.claim`): the planner, not knowing how
    many there are, probes the primary key for each. With the ids as a literal array the planner knows their number,
    and for a batch of a hundredth of the table (10,000 of 1M in bench/sweep.py) scanned the whole table instead.
    Runs last in this module: it trashes an eighth of the world's tasks and deletes them for good."""
    an_eighth = sa.func.substr(sa.cast(Task.id, sa.Text), 1, 1).in_(("0", "1"))
    db.session.execute(sa.update(Task).where(an_eighth).values(deleted_at=utcnow()))
    db.session.commit()
    plans = []

    def explain_on_the_same_connection(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("DELETE FROM tasks"):  # the batch's temporary table is this transaction's
            with cursor.connection.cursor() as probe:
                probe.execute(f"EXPLAIN {statement}", parameters)
                plans.append("\n".join(row[0] for row in probe.fetchall()))

    trashed = db.session.scalar(sa.select(sa.func.count()).where(Task.deleted_at.is_not(None)))
    sa.event.listen(db.engine, "before_cursor_execute", explain_on_the_same_connection)
    try:
        assert tasks.purge_trash(utcnow() + timedelta(seconds=1)) == trashed > TASKS // 10
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", explain_on_the_same_connection)
    assert len(plans) == 1
    assert not seq_scans(plans[0], "tasks"), plans[0]
