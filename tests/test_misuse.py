"""The misuse sweep (`flask tickets sweep-misuse`): patterns and evidence, once per user per day, concurrency; the
admins' review at /api/admin/misuse-reports: roles, filters, warn and suspend."""

import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs import worker
from finstack.notifications.models import Notification
from finstack.tickets import misuse
from finstack.tickets.models import MisuseReport, Ticket
from tests.overlap import run_two_overlapping

LONG = "The description says enough about the problem."
_numbers = itertools.count(1)


def _ticket(user, title="Printer jam", description=LONG, hours_ago=1):
    number = next(_numbers)
    ticket = Ticket(
        number=number,
        title=title,
        description=description,
        urgency="low",
        status="open",
        requester_id=user.id,
        created_at=utcnow() - timedelta(hours=hours_ago),
    )
    db.session.add(ticket)
    db.session.commit()
    return f"TKT-{number:06d}"


def _reports():
    db.session.expire_all()
    return db.session.scalars(sa.select(MisuseReport).order_by(MisuseReport.day)).all()


@pytest.fixture
def scene(app, make_user):
    """`noisy`: five tickets, two near-duplicates, two too short; `quiet`: one ticket; `old`: duplicates long ago."""
    scene = type("Scene", (), {})()
    scene.noisy, scene.quiet, scene.old = make_user(), make_user(), make_user()
    scene.noisy_tickets = [
        _ticket(scene.noisy, title="VPN is down!"),
        _ticket(scene.noisy, title="vpn is  down"),
        _ticket(scene.noisy, title="Need a laptop", description="help me now"),
        _ticket(scene.noisy, title="Payroll is late", description="  pay me   "),
        _ticket(scene.noisy, title="Printer jam"),
    ]
    _ticket(scene.quiet)
    _ticket(scene.old, title="Same title", hours_ago=30)
    _ticket(scene.old, title="Same title", hours_ago=31)
    return scene


def _sweep(runner, *options):
    return runner.invoke(args=["tickets", "sweep-misuse", *options])


# --- The sweep ---------------------------------------------------------------------------------------------------


def test_patterns_and_evidence(scene):
    result = misuse.sweep()
    assert (result.flagged_users, result.reports_created) == (1, 1)
    [report] = _reports()
    assert report.user_id == scene.noisy.id
    assert report.day == utcnow().date()
    assert (report.window_hours, report.ticket_count) == (24, 5)
    assert report.patterns == ["high_volume", "duplicate_titles", "short_descriptions"]
    first, second, third, fourth, _ = scene.noisy_tickets
    assert report.evidence == {
        "high_volume": {"threshold": 5, "tickets": scene.noisy_tickets},
        "duplicate_titles": [{"title": "VPN is down!", "tickets": [first, second]}],
        "short_descriptions": {"under_characters": 20, "tickets": [third, fourth]},
    }
    assert report.reviewed is False and report.action is None


@pytest.mark.parametrize(
    ("titles", "descriptions", "patterns"),
    [
        (["Alpha one", "Beta two", "Gamma three", "Delta four", "Epsilon five"], [LONG] * 5, ["high_volume"]),
        (["Alpha one", "Beta two", "Gamma three", "Delta four"], [LONG] * 4, []),
        (["Reset my password", "reset my password."], [LONG] * 2, ["duplicate_titles"]),
        (["Reset my password", "Reset my passwords"], [LONG] * 2, []),
        (["Alpha one", "Beta two"], ["too short", "also short"], ["short_descriptions"]),
        (["Alpha one", "Beta two"], ["too short", LONG], []),
        (["Alpha one", "Beta two"], ["exactly twenty chars", "exactly twenty chars"], []),
    ],
    ids=["five", "four", "duplicates", "different", "two-short", "one-short", "twenty-is-enough"],
)
def test_each_pattern_and_its_threshold(app, make_user, titles, descriptions, patterns):
    user = make_user()
    for title, description in zip(titles, descriptions, strict=True):
        _ticket(user, title=title, description=description)
    misuse.sweep()
    assert [report.patterns for report in _reports()] == ([patterns] if patterns else [])


def test_the_window(scene):
    misuse.sweep(window_hours=48)
    assert {report.user_id for report in _reports()} == {scene.noisy.id, scene.old.id}


def test_deactivated_users_are_not_reported(scene, runner):
    assert runner.invoke(args=["users", "deactivate", scene.noisy.username]).exit_code == 0
    assert misuse.sweep().flagged_users == 0
    assert _reports() == []


def test_once_per_user_per_day_and_idempotent(scene):
    now = utcnow()
    assert misuse.sweep(now).reports_created == 1
    _ticket(scene.noisy, title="Another one")
    again = misuse.sweep(now + timedelta(minutes=5))
    assert (again.flagged_users, again.reports_created) == (1, 0)
    [report] = _reports()
    assert report.ticket_count == 5  # the day's report is not rewritten
    tomorrow = misuse.sweep(now + timedelta(days=1), window_hours=56)
    assert tomorrow.reports_created == 2  # noisy again, and old: its duplicates fall in the 56 hours
    assert [report.day for report in _reports()].count(now.date()) == 1


def test_cli_sweep(runner, scene):
    result = _sweep(runner, "--window-hours", "48")
    assert result.exit_code == 0, result.output
    assert "Requesters showing a pattern: 2" in result.output
    assert "Reports created: 2" in result.output
    assert {report.window_hours for report in _reports()} == {48}
    entry = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "misuse.sweep")).one()
    assert entry.actor_label.startswith("cli:")
    assert entry.changes["reports_created"] == 2
    rerun = _sweep(runner)
    assert rerun.exit_code == 0 and "Reports created: 0" in rerun.output
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditLog.action == "misuse.sweep")) == 1


def test_cli_rejects_a_bad_window(runner):
    assert _sweep(runner, "--window-hours", "0").exit_code != 0


def _built_by(path, now):
    """The reports `path` inserts for the 24 hours before `now`, as comparable tuples, and what it returned; rolled
    back after."""
    window = (Ticket.created_at > now - timedelta(hours=24), Ticket.created_at <= now)
    flagged, created = path(window, now, 24)
    rows = db.session.execute(
        sa.select(
            MisuseReport.id,
            MisuseReport.user_id,
            MisuseReport.day,
            MisuseReport.window_hours,
            MisuseReport.ticket_count,
            MisuseReport.patterns,
            MisuseReport.evidence,
            MisuseReport.reviewed,
            MisuseReport.created_at,
            MisuseReport.updated_at,
        )
        .where(MisuseReport.id.in_(created))
        .order_by(MisuseReport.user_id)
    ).all()
    db.session.rollback()
    assert sorted(created) == sorted(row.id for row in rows)
    return flagged, [tuple(row)[1:] for row in rows]


def test_the_evidence_built_by_the_database_is_what_python_builds(app, make_user, runner):
    """On PostgreSQL the reports come from one INSERT … SELECT (`_reports_built_in_sql`); SQLite's path builds them
    in Python (`_reports_built_in_python`). Same rows, same JSON in the same key and list order, for every pattern
    alone and together, several duplicate groups, references past six digits, a deactivated requester, an old day's
    report kept."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("_reports_built_in_sql is the PostgreSQL path")
    everything, volume, groups, short, quiet, gone, reported = (make_user() for _ in range(7))
    for title, description in [
        ("VPN is down!", LONG),
        ("Laptop", "short"),
        ("vpn is  down", "help"),
        ("Printer (3rd floor)", LONG),
        ("printer 3rd floor", LONG),
        ("VPN: is down", LONG),
    ]:
        _ticket(everything, title=title, description=description)
    for number in range(5):
        _ticket(volume, title=f"Distinct {number}")
    for title in ["Beta", "Alpha", "alpha", "Beta.", "Gamma", "beta"]:
        _ticket(groups, title=title)
    _ticket(short, title="One", description="   tiny   ")
    _ticket(short, title="Two", description="x" * 19)
    _ticket(short, title="Three", description="x" * 20)
    _ticket(quiet)
    _ticket(gone, title="Same")
    _ticket(gone, title="Same")
    _ticket(reported, title="Twice")
    _ticket(reported, title="twice")
    db.session.execute(
        sa.update(Ticket).where(Ticket.requester_id == volume.id).values(number=Ticket.number + 1_000_000)
    )
    db.session.commit()
    assert runner.invoke(args=["users", "deactivate", gone.username]).exit_code == 0
    now = utcnow()
    misuse.sweep(now)  # `reported` (and the others) have today's report already
    db.session.execute(sa.delete(MisuseReport).where(MisuseReport.user_id != reported.id))
    db.session.commit()

    by_python = _built_by(misuse._reports_built_in_python, now)
    by_sql = _built_by(misuse._reports_built_in_sql, now)
    assert by_sql == by_python
    flagged, reports = by_sql
    assert flagged == 5  # everything, volume, groups, short, and reported: not reported twice
    assert [report[0] for report in reports] == sorted(user.id for user in (everything, volume, groups, short))
    evidence = {report[0]: report[5] for report in reports}
    assert [group["title"] for group in evidence[groups.id]["duplicate_titles"]] == ["Beta", "Alpha"]
    assert evidence[volume.id]["high_volume"]["tickets"][0].startswith("TKT-100")
    assert list(evidence[everything.id]) == ["high_volume", "duplicate_titles", "short_descriptions"]


def test_two_concurrent_sweeps_report_once(app, scene):
    """Two sweeps at once, held up by a third connection so that their transactions overlap: one report."""
    now = utcnow()
    results = run_two_overlapping(app, lambda: misuse.sweep(now), lock_table="misuse_reports")
    assert sorted(result.reports_created for result in results) == [0, 1]
    assert len(_reports()) == 1


# --- The review (admins) -----------------------------------------------------------------------------------------


@pytest.fixture
def reports(scene, admin):
    """Reports for `noisy` and `old` (48 hours)."""
    misuse.sweep(window_hours=48)
    return {report.user_id: str(report.id) for report in _reports()}


@pytest.fixture
def staff(client, auth_headers, admin, make_user):
    """An agent and a lead of a department."""
    headers = auth_headers(admin)
    department_id = client.post("/api/departments", json={"name": "Desk"}, headers=headers).json["id"]
    staff = {}
    for role in ("agent", "lead"):
        staff[role] = make_user()
        body = {"user_id": str(staff[role].id), "role": role}
        assert client.post(f"/api/departments/{department_id}/agents", json=body, headers=headers).status_code == 201
    return staff


def test_only_admins_see_and_review_reports(client, auth_headers, scene, reports, staff, admin):
    report_id = reports[scene.noisy.id]
    for user in (staff["agent"], staff["lead"], scene.noisy, scene.quiet):
        headers = auth_headers(user)
        assert client.get("/api/admin/misuse-reports", headers=headers).status_code == 403
        assert client.get(f"/api/admin/misuse-reports/{report_id}", headers=headers).status_code == 403
        response = client.patch(f"/api/admin/misuse-reports/{report_id}", json={"reviewed": True}, headers=headers)
        assert response.status_code == 403
    response = client.get("/api/admin/misuse-reports", headers=auth_headers(admin))
    assert response.status_code == 200
    assert response.json["pagination"]["total"] == 2
    item = next(item for item in response.json["items"] if item["id"] == report_id)
    assert item["user"]["id"] == str(scene.noisy.id)
    assert item["patterns"] == ["high_volume", "duplicate_titles", "short_descriptions"]
    assert item["evidence"]["high_volume"]["tickets"] == scene.noisy_tickets
    assert (item["reviewed"], item["reviewed_by"], item["action"]) == (False, None, None)


def test_filters(client, auth_headers, scene, reports, admin):
    headers = auth_headers(admin)

    def users(**query):
        response = client.get("/api/admin/misuse-reports", query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        return {item["user"]["username"] for item in response.json["items"]}

    noisy, old = scene.noisy.username, scene.old.username
    assert users(pattern="duplicate_titles") == {noisy, old}
    assert users(pattern="high_volume") == {noisy}
    assert users(pattern="short_descriptions") == {noisy}
    assert users(user_id=str(scene.old.id)) == {old}
    today = utcnow().date()
    assert users(day_from=today.isoformat(), day_to=today.isoformat()) == {noisy, old}
    assert users(day_from=(today + timedelta(days=1)).isoformat()) == set()
    client.patch(f"/api/admin/misuse-reports/{reports[scene.old.id]}", json={"action": "none"}, headers=headers)
    assert users(reviewed="true") == {old}
    assert users(reviewed="false") == {noisy}
    assert users(action="none") == {old}
    url = f"/api/admin/misuse-reports/{reports[scene.old.id]}"
    assert client.patch(url, json={"reviewed": False}, headers=headers).status_code == 409
    assert client.patch(url, json={"reviewed": False, "action": "none"}, headers=headers).status_code == 409
    assert client.get("/api/admin/misuse-reports?pattern=spam", headers=headers).status_code == 400


def test_mark_reviewed_and_back(client, auth_headers, scene, reports, admin):
    url = f"/api/admin/misuse-reports/{reports[scene.noisy.id]}"
    response = client.patch(url, json={"reviewed": True}, headers=auth_headers(admin))
    assert response.status_code == 200
    assert response.json["reviewed"] is True and response.json["reviewed_by"]["id"] == str(admin.id)
    assert response.json["reviewed_at"] is not None and response.json["action"] is None
    response = client.patch(url, json={"reviewed": False}, headers=auth_headers(admin))
    assert (response.json["reviewed"], response.json["reviewed_by"]) == (False, None)
    assert client.patch(url, json={}, headers=auth_headers(admin)).status_code == 400
    assert client.patch(url, json={"action": "ban"}, headers=auth_headers(admin)).status_code == 400


def test_warn_notifies_the_user_once(client, auth_headers, scene, reports, admin):
    url = f"/api/admin/misuse-reports/{reports[scene.noisy.id]}"
    response = client.patch(url, json={"action": "warn"}, headers=auth_headers(admin))
    assert response.status_code == 200
    assert (response.json["action"], response.json["reviewed"]) == ("warn", True)
    assert client.patch(url, json={"action": "warn"}, headers=auth_headers(admin)).status_code == 200
    notifications = db.session.scalars(sa.select(Notification).where(Notification.user_id == scene.noisy.id)).all()
    assert [notification.type for notification in notifications] == ["misuse_warning"]
    assert "duplicate titles" in notifications[0].message
    inbox = client.get("/api/notifications", headers=auth_headers(scene.noisy)).json
    assert [item["type"] for item in inbox["items"]] == ["misuse_warning"]
    response = client.patch(url, json={"action": "suspend"}, headers=auth_headers(admin))
    assert response.status_code == 409
    assert client.patch(url, json={"reviewed": False}, headers=auth_headers(admin)).status_code == 409
    assert db.session.get(type(scene.noisy), scene.noisy.id).is_active is True


def test_warn_mails_the_user(smtp_sink, client, auth_headers, scene, reports, admin):
    """The warning reaches the user's inbox through a real SMTP server, once, and nobody else's."""
    url = f"/api/admin/misuse-reports/{reports[scene.noisy.id]}"
    assert client.patch(url, json={"action": "warn"}, headers=auth_headers(admin)).status_code == 200
    assert client.patch(url, json={"action": "warn"}, headers=auth_headers(admin)).status_code == 200
    assert worker.drain(10)
    assert [message["To"] for message in smtp_sink.messages] == [scene.noisy.email]
    [message] = smtp_sink.messages
    assert message["Subject"] == "A warning about your helpdesk tickets"
    assert "duplicate titles" in message.get_payload()


def test_suspend_deactivates_and_ends_sessions(client, auth_headers, scene, reports, admin):
    headers = auth_headers(scene.noisy)  # a token issued before the suspension
    assert client.get("/api/tickets", headers=headers).status_code == 200
    url = f"/api/admin/misuse-reports/{reports[scene.noisy.id]}"
    response = client.patch(url, json={"action": "suspend"}, headers=auth_headers(admin))
    assert response.status_code == 200
    assert (response.json["action"], response.json["reviewed"]) == ("suspend", True)
    db.session.expire_all()
    user = db.session.get(type(scene.noisy), scene.noisy.id)
    assert user.is_active is False
    assert client.get("/api/tickets", headers=headers).status_code == 401
    actions = set(db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_id == user.id)))
    assert {"user.deactivate", "auth.tokens_revoked"} <= actions


def test_an_admin_cannot_suspend_themself(client, auth_headers, admin):
    for _ in range(5):
        _ticket(admin)
    misuse.sweep()
    [report] = _reports()
    url = f"/api/admin/misuse-reports/{report.id}"
    assert client.patch(url, json={"action": "suspend"}, headers=auth_headers(admin)).status_code == 409
    [report] = _reports()
    assert report.action is None and report.reviewed is False


def test_unknown_report(client, auth_headers, admin):
    url = "/api/admin/misuse-reports/00000000-0000-0000-0000-000000000000"
    assert client.patch(url, json={"reviewed": True}, headers=auth_headers(admin)).status_code == 404
    assert client.get(url, headers=auth_headers(admin)).status_code == 404
