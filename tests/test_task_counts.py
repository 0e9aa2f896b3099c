"""The maintained task counts (finstack.tasks.counts, migrations 0025 and 0027): always equal to a fresh GROUP BY over
the live tasks, whatever sequence of writes the services make, and the overdue read from them equal to a live count;
`flask stats rebuild` repairs a damaged table."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.projects import service as projects
from finstack.tasks import counts, overdue
from finstack.tasks import service as tasks
from finstack.tasks.models import ACTIVE_STATUSES, PRIORITIES, STATUSES, Task, TaskCount
from finstack.users.models import User
from tests.conftest import POSTGRES_URL, empty_tables

TYPES = ("call", "email", "visit")
DAILY = {"every": "day", "interval": 1}


def maintained():
    """The table's counts, a row at 0 being the same as no row."""
    return {row: count for row, count in counts.stored().items() if count != 0}


def start_of_today():
    return utcnow().replace(hour=0, minute=0, second=0, microsecond=0)


def due_times():
    """Due times either side of the day boundaries that overdue depends on: yesterday's last instant, today's first,
    earlier today, later today, tomorrow, and further away."""
    now, today = utcnow(), start_of_today()
    return (
        today - timedelta(microseconds=1),
        today,
        today + (now - today) / 2,
        now + (today + timedelta(days=1) - now) / 2,
        today + timedelta(days=1, hours=1),
        now - timedelta(days=40),
        now + timedelta(days=40),
    )


def live_overdue(*conditions):
    """The overdue tasks counted live: active, live, due before now."""
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            Task.live(), Task.status.in_(ACTIVE_STATUSES), Task.task_time < utcnow(), *conditions
        )
    )


class World:
    """Two creators (an admin and a manager), two assignees, two projects, and the tasks they write."""

    def __init__(self, make_user):
        self.admin, self.manager = make_user(role="admin"), make_user(role="manager")
        self.assignees = [make_user().id, make_user().id, None]
        self.projects = [projects.create_project(self.admin, key=f"P{n}", name=f"Project {n}").id for n in (1, 2)]
        self.projects.append(None)

    def task_id(self, index):
        """A task (live or trashed) picked by `index`, or None when there is none."""
        ids = db.session.scalars(sa.select(Task.id).order_by(Task.date_created, Task.id)).all()
        return ids[index % len(ids)] if ids else None

    def create(self, status, task_type, assignee, priority, project, past, recurring, by_manager):
        when = utcnow() + (timedelta(days=-2) if past else timedelta(days=2))
        tasks.create_task(
            self.manager if by_manager else self.admin,
            status=status,
            entity_name="Task",
            task_type=task_type,
            task_time=when,
            contact_person_id=self.assignees[assignee],
            priority=priority,
            project_id=self.projects[project],
            repeat=DAILY if recurring else None,
        )

    def update(self, index, field, choice):
        values = {
            "status": STATUSES,
            "task_type": TYPES,
            "contact_person_id": self.assignees,
            "priority": PRIORITIES,
            "project_id": self.projects,
            "task_time": due_times(),
        }[field]
        task_id = self.task_id(index)
        if task_id is not None:
            tasks.update_task(self.admin, task_id, {field: values[choice % len(values)]})

    def task_ids(self, indexes):
        return [task_id for task_id in map(self.task_id, indexes) if task_id is not None]

    def bulk_status(self, indexes, status):
        tasks.bulk_change_status(self.admin, self.task_ids(indexes), status)

    def bulk_delete(self, indexes):
        tasks.bulk_delete(self.admin, self.task_ids(indexes))

    def trash(self, index):
        task_id = self.task_id(index)
        if task_id is not None:
            tasks.delete_task(self.admin, task_id)

    def restore(self, index):
        task_id = self.task_id(index)
        if task_id is not None:
            tasks.restore_task(self.admin, task_id)

    def purge(self):
        tasks.purge_trash(utcnow() + timedelta(seconds=1))

    def sweep(self):
        overdue.sweep()

    def delete_project(self, index):
        project_id = self.projects[index]
        if project_id is not None:
            projects.delete_project(self.admin, project_id, cascade=True)
            self.projects[index] = None


indexes = st.integers(min_value=0, max_value=40)
operations = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(STATUSES),
        st.sampled_from(TYPES),
        st.integers(0, 2),
        st.sampled_from(PRIORITIES),
        st.integers(0, 2),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(
        st.just("update"),
        indexes,
        st.sampled_from(("status", "task_type", "contact_person_id", "priority", "project_id", "task_time")),
        st.integers(0, 6),
    ),
    st.tuples(st.just("bulk_status"), st.lists(indexes, min_size=1, max_size=4), st.sampled_from(STATUSES)),
    st.tuples(st.just("bulk_delete"), st.lists(indexes, min_size=1, max_size=4)),
    st.tuples(st.just("trash"), indexes),
    st.tuples(st.just("restore"), indexes),
    st.tuples(st.just("purge")),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("delete_project"), st.integers(0, 1)),
)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(operations, min_size=1, max_size=12))
def test_counts_equal_a_fresh_group_by_after_any_writes(app, make_user, steps):
    db.session.remove()
    empty_tables()  # each example starts from empty tables, as each test does
    world = World(make_user)
    for name, *arguments in steps:
        try:
            getattr(world, name)(*arguments)
        except ApiError:
            db.session.rollback()  # refused (a trashed task, a deleted project…): nothing written
        assert maintained() == counts.fresh(), f"after {name}{tuple(arguments)}"
        assert counts.with_overdue("all", "")[1] == live_overdue(), f"after {name}{tuple(arguments)}"
        for project in filter(None, world.projects):
            read = counts.with_overdue("project", counts.uuid_key(project), Task.project_id == project)[1]
            assert read == live_overdue(Task.project_id == project), f"after {name}{tuple(arguments)}"
    assert min(counts.stored().values(), default=0) >= 0


DEFAULTS = {
    "status": "open",
    "task_type": "call",
    "assignee": 0,
    "priority": "medium",
    "project": 0,
    "past": False,
    "recurring": False,
    "by_manager": False,
}


def _add(world, count, **fields):
    for _ in range(count):
        world.create(**(DEFAULTS | fields))


def test_rebuild_repairs_the_table_and_says_what_it_changed(app, runner, make_user):
    world = World(make_user)
    _add(world, 3)
    _add(world, 2, status="closed", task_type="visit")
    right = counts.stored()
    db.session.execute(
        sa.update(TaskCount).where(TaskCount.dimension == "all", TaskCount.status == "open").values(count=99)
    )
    db.session.execute(sa.delete(TaskCount).where(TaskCount.dimension == "task_type", TaskCount.key == "visit"))
    db.session.add(TaskCount(dimension="priority", key="high", status="open", count=4))
    db.session.add(TaskCount(dimension="priority", key="low", status="open", count=0))
    db.session.commit()

    result = runner.invoke(args=["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "all - open: 99 -> 3",
        "priority high open: 4 -> 0",
        "task_type visit closed: 0 -> 2",
        "Counts changed: 3",
    ]
    db.session.remove()
    assert counts.stored() == right == counts.fresh()

    again = runner.invoke(args=["stats", "rebuild"])
    assert again.output == "Counts changed: 0\n"


def test_keys_and_liveness(app, make_user):
    """A UUID key is its 32 hex digits, no value is ""; a trashed task never counts."""
    world = World(make_user)
    _add(world, 2)
    _add(world, 1, assignee=2, project=2)
    world.trash(0)
    assert maintained() == counts.fresh()
    assert counts.with_overdue("all", "") == ({"open": 2, "in_progress": 0, "closed": 0, "cancelled": 0}, 0)
    key = counts.uuid_key(world.assignees[0])
    stored = counts.stored()
    assert stored[("contact_person", key, "open")] == stored[("contact_person", "", "open")] == 1


def test_overdue_is_the_active_tasks_counted_minus_those_not_yet_due(app, make_user):
    world = World(make_user)
    _add(world, 2, past=True)
    _add(world, 1, past=True, status="in_progress", project=1)
    _add(world, 1, past=True, status="closed")
    _add(world, 1)
    world.trash(0)  # a trashed overdue task is not overdue
    assert counts.with_overdue("all", "") == ({"open": 2, "in_progress": 1, "closed": 1, "cancelled": 0}, 2)
    project = world.projects[0]
    assert counts.with_overdue("project", counts.uuid_key(project), Task.project_id == project) == (
        {"open": 2, "in_progress": 0, "closed": 1, "cancelled": 0},
        1,
    )


@pytest.mark.skipif(not POSTGRES_URL, reason="row locks and deadlocks are PostgreSQL's")
def test_writers_touching_counters_in_opposite_orders_do_not_deadlock(app, make_user):
    """Two transactions each write twice, in opposite orders of the counters they move (open, then closed; closed,
    then open): the counts are applied at COMMIT in one key order, so neither waits on the other in a cycle."""
    world = World(make_user)
    _add(world, 2, status="in_progress")
    first, second = (world.task_id(index) for index in (0, 1))
    creator = world.admin.id
    db.session.remove()
    both_wrote_once = threading.Barrier(2, timeout=10)
    errors = []

    def writer(task_id, new_task_status, close_first):
        try:
            with app.app_context(), db.engine.begin() as connection:
                statements = [
                    sa.update(Task).where(Task.id == task_id).values(status="closed"),
                    sa.update(Task).where(Task.id == task_id).values(priority="high"),
                ]
                new_task = sa.insert(Task).values(
                    entity_name="Concurrent",
                    task_type="call",
                    task_time=utcnow(),
                    status=new_task_status,
                    priority="low",
                    created_by=creator,
                )
                connection.execute(statements[0] if close_first else new_task)
                both_wrote_once.wait()
                connection.execute(new_task if close_first else statements[0])
                connection.execute(statements[1])
        except Exception as error:
            errors.append(error)

    threads = [
        threading.Thread(target=writer, args=(first, "open", True)),
        threading.Thread(target=writer, args=(second, "open", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert maintained() == counts.fresh()
    assert counts.with_overdue("all", "")[0] == {"open": 2, "in_progress": 0, "closed": 2, "cancelled": 0}


def test_migration_0027_fills_the_due_days_and_its_downgrade_restores_0025(app, make_user):
    """On the session's database (SQLite or PostgreSQL): below 0027 the triggers keep 0025's dimensions only; the
    upgrade fills the due days of the tasks already there, and its triggers keep them from then on."""
    world = World(make_user)
    _add(world, 2, past=True)
    _add(world, 1, status="in_progress", project=1)
    admin_id = world.admin.id
    db.session.remove()
    downgrade(revision="0025")
    world.admin = db.session.get(User, admin_id)  # the session was closed for the migration
    dimensions_0025 = {"all", "task_type", "contact_person", "created_by", "project", "priority"}
    assert {dimension for dimension, _, _ in maintained()} == dimensions_0025
    world.update(0, "task_time", 5)  # 0025's triggers still count (and ignore the due day)
    world.update(1, "status", 1)
    world.trash(2)
    in_0025 = {row: count for row, count in counts.fresh().items() if row[0] in dimensions_0025}
    assert maintained() == in_0025
    db.session.remove()
    upgrade()
    world.admin = db.session.get(User, admin_id)
    assert maintained() == counts.fresh()
    assert {dimension for dimension, _, _ in maintained()} == dimensions_0025 | {"due_day", "project_due_day"}
    world.restore(2)
    world.update(1, "task_time", 4)
    assert maintained() == counts.fresh()
    assert counts.with_overdue("all", "")[1] == live_overdue() == 1


@pytest.mark.skipif(not POSTGRES_URL, reason="the queue of deltas is PostgreSQL's")
def test_deltas_applied_after_each_statement_when_immediate_and_undone_with_a_savepoint(app, make_user):
    """With the apply made immediate, each statement's deltas are applied at its end (a later statement's too, after
    an earlier one's apply), and a rolled-back savepoint takes its applied deltas with it."""
    world = World(make_user)
    _add(world, 2)
    first, second = (world.task_id(index) for index in (0, 1))
    db.session.remove()

    def open_count(connection):
        return connection.scalar(
            sa.select(TaskCount.count).where(TaskCount.dimension == "due_day", TaskCount.status == "open")
        )

    with db.engine.begin() as connection:
        connection.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))
        connection.execute(sa.update(Task).where(Task.id == first).values(status="closed"))
        assert open_count(connection) == 1
        savepoint = connection.begin_nested()
        connection.execute(sa.update(Task).where(Task.id == second).values(status="closed"))
        assert open_count(connection) == 0
        savepoint.rollback()
        assert open_count(connection) == 1
        connection.execute(sa.update(Task).where(Task.id == second).values(status="cancelled"))
        assert open_count(connection) == 0
    assert maintained() == counts.fresh()
