"""`flask tasks sweep-overdue`: who is notified, once per overdue period, idempotent, dry run, concurrency, e-mail."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.models import EmailPreference, Notification
from finstack.tasks import overdue
from finstack.tasks.models import Task
from tests.overlap import run_two_overlapping


def _sweep(runner, *options):
    return runner.invoke(args=["tasks", "sweep-overdue", *options])


def _add_task(assignee, creator, *, status="open", due_hours=-2, notified_hours=None, name="Acme Ltd"):
    """A task whose time is `due_hours` from now (negative: in the past), created a week ago."""
    now = utcnow()
    task = Task(
        entity_name=name,
        task_type="Tax Filing",
        contact_person_id=assignee.id if assignee else None,
        created_by=creator.id,
        status=status,
        date_created=now - timedelta(days=7),
        task_time=now + timedelta(hours=due_hours),
        closed_at=now - timedelta(hours=1) if status == "closed" else None,
        overdue_notified_at=now + timedelta(hours=notified_hours) if notified_hours is not None else None,
    )
    db.session.add(task)
    db.session.commit()
    return task


def _notifications():
    return db.session.scalars(sa.select(Notification).order_by(Notification.created_at, Notification.id)).all()


@pytest.fixture
def scene(make_user, manager):
    """Alice holds two overdue tasks (open, in progress), Bob one; nothing else is due a notification."""
    alice, bob = make_user(full_name="Alice Able"), make_user(full_name="Bob Baker")
    due = [
        _add_task(alice, manager, name="Alpha Ltd"),
        _add_task(alice, manager, status="in_progress", due_hours=-30, name="Beta LLC"),
        _add_task(bob, manager, due_hours=-0.5, name="Gamma & Co"),
    ]
    not_due = [
        _add_task(alice, manager, status="closed", due_hours=-5),
        _add_task(alice, manager, status="cancelled", due_hours=-5),
        _add_task(bob, manager, due_hours=5),  # not due yet
        _add_task(bob, manager, status="in_progress", due_hours=1),
    ]
    unassigned = _add_task(None, manager, due_hours=-5)  # overdue, but nobody to tell
    return {"alice": alice, "bob": bob, "manager": manager, "due": due, "not_due": [*not_due, unassigned]}


def test_notifies_each_assignee_of_each_overdue_task_once(runner, scene):
    before = {task.id: (task.version, task.updated_at) for task in scene["due"]}
    result = _sweep(runner)
    assert result.exit_code == 0, result.output
    assert "Overdue tasks: 4" in result.output  # the unassigned one is overdue too
    assert "Notified now: 3 tasks, 2 users" in result.output

    notifications = _notifications()
    assert sorted((n.user_id, n.task_id) for n in notifications) == sorted(
        (task.contact_person_id, task.id) for task in scene["due"]
    )
    for notification in notifications:
        assert notification.type == "task_overdue"
        assert notification.actor_id is None
        assert notification.is_read is False
    titles = {n.task_id: n.title for n in notifications}
    assert titles[scene["due"][0].id] == "Task overdue: Alpha Ltd"

    for task in scene["due"]:
        db.session.refresh(task)
        assert task.overdue_notified_at is not None
        # The claim is not an edit: no version bump (nobody's next update gets a 409), updated_at kept.
        assert (task.version, task.updated_at) == before[task.id]
    for task in scene["not_due"]:
        db.session.refresh(task)
        assert task.overdue_notified_at is None


def test_an_immediate_rerun_sends_nothing_new(runner, scene):
    assert _sweep(runner).exit_code == 0
    again = _sweep(runner)
    assert again.exit_code == 0, again.output
    assert "Notified now: 0 tasks, 0 users" in again.output
    assert len(_notifications()) == 3


def test_notifies_again_after_24_hours_not_before(runner, scene):
    assert _sweep(runner).exit_code == 0
    stale, recent, _ = scene["due"]
    stale.overdue_notified_at = utcnow() - timedelta(hours=25)
    recent.overdue_notified_at = utcnow() - timedelta(hours=23)
    # The first notices are as old as their markers (else the new one collapses into them).
    db.session.execute(sa.update(Notification).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()

    result = _sweep(runner)
    assert "Notified now: 1 tasks, 1 users" in result.output
    notifications = _notifications()
    assert len(notifications) == 4
    assert [n.task_id for n in notifications].count(stale.id) == 2
    db.session.refresh(stale)
    assert stale.overdue_notified_at > utcnow() - timedelta(minutes=1)


def test_a_new_deadline_that_passes_is_a_new_overdue_period(runner, scene):
    assert _sweep(runner).exit_code == 0
    task = scene["due"][0]
    # Notified 3 h ago; since then the deadline was moved to 1 h ago, and has passed again.
    task.overdue_notified_at = utcnow() - timedelta(hours=3)
    task.task_time = utcnow() - timedelta(hours=1)
    db.session.commit()
    result = _sweep(runner)
    assert "Notified now: 1 tasks, 1 users" in result.output


def test_dry_run_counts_and_changes_nothing(runner, scene):
    result = _sweep(runner, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Overdue tasks: 4" in result.output
    assert "Would notify: 3 tasks, 2 users (dry run: nothing changed)" in result.output
    assert _notifications() == []
    assert db.session.scalar(sa.select(sa.func.count()).where(Task.overdue_notified_at.is_not(None))) == 0
    assert "Notified now: 3 tasks" in _sweep(runner).output  # and the real run still does it all


def test_inactive_assignees_are_skipped(runner, scene):
    scene["bob"].is_active = False
    db.session.commit()
    result = _sweep(runner)
    assert "Notified now: 2 tasks, 1 users" in result.output
    assert {n.user_id for n in _notifications()} == {scene["alice"].id}


def test_nothing_overdue(runner, make_user, manager):
    _add_task(make_user(), manager, due_hours=3)
    result = _sweep(runner)
    assert result.exit_code == 0
    assert "Overdue tasks: 0" in result.output and "Notified now: 0 tasks, 0 users" in result.output


def test_large_runs_show_a_progress_bar(runner, scene, monkeypatch):
    from finstack.tasks import cli

    monkeypatch.setattr(cli, "PROGRESS_THRESHOLD", 1)
    result = _sweep(runner)
    assert result.exit_code == 0, result.output
    assert "Claiming overdue tasks" in result.output
    assert len(_notifications()) == 3


def test_chunked_claims_cover_every_task(app, make_user, manager):
    users = [make_user() for _ in range(3)]
    tasks = [_add_task(users[number % 3], manager, due_hours=-1 - number) for number in range(10)]
    chunks = []
    result = overdue.sweep(chunk_size=3, progress=chunks.append)
    assert chunks == [3, 3, 3, 1]  # each claim bounded by its chunk, on PostgreSQL too
    assert (result.notified_tasks, result.notified_users) == (10, 3)
    assert sorted(n.task_id for n in _notifications()) == sorted(task.id for task in tasks)


def test_a_failing_sweep_exits_non_zero_and_changes_nothing(runner, scene, monkeypatch):
    def broken(rows):
        raise OperationalError("INSERT INTO notifications", {}, Exception("disk full"))

    monkeypatch.setattr(overdue, "notify", broken)
    result = _sweep(runner)
    assert result.exit_code != 0
    assert "Overdue sweep failed, nothing was changed" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).where(Task.overdue_notified_at.is_not(None))) == 0
    assert _notifications() == []


# --- e-mail ------------------------------------------------------------------------------------------------------


def test_one_digest_per_user_after_commit_per_preference(smtp_sink, runner, scene):
    bobs_second = _add_task(scene["bob"], scene["manager"], due_hours=-8, name="Delta Group")
    db.session.add(EmailPreference(user_id=scene["bob"].id, type="task_overdue", enabled=False))
    db.session.commit()

    result = _sweep(runner)
    assert result.exit_code == 0, result.output
    assert "Notified now: 4 tasks, 2 users" in result.output
    assert "E-mails queued: 1" in result.output
    # The command delivers the mail jobs it queued before exiting, so the sink already holds everything.
    assert [message["To"] for message in smtp_sink.messages] == [scene["alice"].email]
    digest = smtp_sink.messages[0]
    assert digest["Subject"] == "FinStack: 2 new notifications"
    body = digest.get_payload()
    assert "Task overdue: Alpha Ltd" in body and "Task overdue: Beta LLC" in body
    # Bob opted out of overdue e-mail, but still has his notifications.
    assert {n.task_id for n in _notifications() if n.user_id == scene["bob"].id} == {
        scene["due"][2].id,
        bobs_second.id,
    }


def test_dry_run_sends_no_mail(smtp_sink, runner, scene):
    assert _sweep(runner, "--dry-run").exit_code == 0
    assert smtp_sink.messages == []


# --- two sweeps at once ------------------------------------------------------------------------------------------



def test_two_concurrent_sweeps_notify_each_task_once(app, make_user, manager):
    """Two sweeps run at once, each in its own thread, app context, session and connection, while a third
    connection holds them up so that their transactions overlap; still every task is notified exactly once."""
    users = [make_user() for _ in range(4)]
    tasks = [_add_task(users[number % 4], manager, due_hours=-1 - number) for number in range(40)]
    results = run_two_overlapping(app, lambda: overdue.sweep(chunk_size=7), lock_table="notifications")
    assert sum(result.notified_tasks for result in results) == 40
    db.session.expire_all()
    counts = db.session.execute(sa.select(Notification.task_id, sa.func.count()).group_by(Notification.task_id)).all()
    assert sorted(task_id for task_id, _ in counts) == sorted(task.id for task in tasks)
    assert {count for _, count in counts} == {1}
