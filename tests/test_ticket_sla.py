"""Helpdesk SLA: due dates per urgency, the pause, first response, breaches, `flask tickets sweep-sla`, `breached`."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.chat.models import Conversation
from finstack.config import ConfigError, read_environment
from finstack.core import events as core_events
from finstack.core.event_log import UserEvent
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.jobs import worker
from finstack.notifications.models import Notification
from finstack.tickets import cli, events, sla
from finstack.tickets.models import Ticket
from finstack.tickets.schemas import TicketOut, show, staff_row
from finstack.users.models import User
from finstack.webhooks.models import WebhookDelivery
from tests.overlap import run_two_overlapping

BODY = {"title": "VPN is down", "description": "The vpn drops every minute since Monday.", "urgency": "high"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FIRST_RESPONSE = {"critical": 30, "high": 120, "medium": 480, "low": 1440}
RESOLUTION = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}


@pytest.fixture
def desk(client, auth_headers, admin, make_user):
    """A department routing `vpn` with an agent (who gets the tickets) and a lead, and a requester."""
    headers = auth_headers(admin)
    department_id = client.post("/api/departments", json={"name": "Tech"}, headers=headers).json["id"]
    rule = {"department_id": department_id, "keywords": ["vpn"]}
    assert client.post("/api/routing-rules", json=rule, headers=headers).status_code == 201
    desk = type("Desk", (), {})()
    desk.department_id, desk.admin = department_id, admin
    desk.agent, desk.lead, desk.requester = make_user(), make_user(), make_user()
    for user, role in ((desk.lead, "lead"), (desk.agent, "agent")):
        body = {"user_id": str(user.id), "role": role}
        assert client.post(f"/api/departments/{department_id}/agents", json=body, headers=headers).status_code == 201
    return desk


def file(client, auth_headers, user, **changes):
    response = client.post("/api/tickets", json={**BODY, **changes}, headers=auth_headers(user))
    assert response.status_code == 201, response.json
    return response.json


def file_for_agent(client, auth_headers, desk, user=None, **changes):
    """A ticket of the desk's department, assigned to its agent (the router may have chosen the lead)."""
    ticket = file(client, auth_headers, user or desk.requester, **changes)
    if ticket["assignee"]["id"] != str(desk.agent.id):
        body = {"assignee_id": str(desk.agent.id)}
        response = client.patch(f"/api/tickets/{ticket['id']}/assign", json=body, headers=auth_headers(desk.lead))
        assert response.status_code == 200, response.json
        ticket = response.json
    return ticket


def set_status(client, auth_headers, user, ticket, status):
    response = client.patch(
        f"/api/tickets/{ticket['id']}/status", json={"status": status}, headers=auth_headers(user)
    )
    assert response.status_code == 200, response.json
    return response.json


def back_date(ticket, **columns):
    """Set SLA columns straight in the database: the frozen clock of these tests."""
    db.session.execute(sa.update(Ticket).where(Ticket.id == uuid.UUID(ticket["id"])).values(**columns))
    db.session.commit()


def sweep(runner, *options):
    result = runner.invoke(args=["tickets", "sweep-sla", *options])
    assert result.exit_code == 0, result.output
    return result.output


def breach_notifications():
    return db.session.execute(
        sa.select(Notification.user_id, Notification.title).where(Notification.type == "ticket_breached")
    ).all()


def parse(value):
    return datetime.fromisoformat(value)


# --- Targets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("urgency", ["critical", "high", "medium", "low"])
def test_due_dates_follow_the_urgency(client, auth_headers, desk, urgency):
    before = utcnow()
    ticket = file(client, auth_headers, desk.requester, urgency=urgency)
    after = utcnow()
    state = ticket["sla"]
    for key, minutes in (("first_response_due_at", FIRST_RESPONSE), ("resolution_due_at", RESOLUTION)):
        due = parse(state[key])
        assert before + timedelta(minutes=minutes[urgency]) <= due <= after + timedelta(minutes=minutes[urgency])
    assert state["first_responded_at"] is None and state["paused_at"] is None
    assert state["first_response_breached"] is False and state["resolution_breached"] is False


def test_targets_come_from_the_settings(app, client, auth_headers, desk):
    app.config["SLA_FIRST_RESPONSE_MINUTES"] = {**FIRST_RESPONSE, "high": 7}
    app.config["SLA_RESOLUTION_MINUTES"] = {**RESOLUTION, "high": 70}
    ticket = file(client, auth_headers, desk.requester)
    created = parse(ticket["created_at"])
    first_response = parse(ticket["sla"]["first_response_due_at"])
    resolution = parse(ticket["sla"]["resolution_due_at"])
    assert timedelta(minutes=7) <= first_response - created < timedelta(minutes=8)
    assert timedelta(minutes=70) <= resolution - created < timedelta(minutes=71)


def test_settings_parse_per_urgency_maps():
    parsed = read_environment({"SLA_FIRST_RESPONSE_MINUTES": " Critical=5, low=2000 ", "SLA_RESOLUTION_MINUTES": ""})
    assert parsed == {"SLA_FIRST_RESPONSE_MINUTES": {"critical": 5, "high": 120, "medium": 480, "low": 2000}}
    for bad in ("urgent=5", "critical=0", "critical", "critical=soon"):
        with pytest.raises(ConfigError, match="SLA_RESOLUTION_MINUTES"):
            read_environment({"SLA_RESOLUTION_MINUTES": bad})


def test_a_changed_urgency_moves_the_due_dates(client, auth_headers, admin, make_user):
    # No department has an agent: the ticket stays open, so its requester may still edit it.
    requester = make_user()
    ticket = file(client, auth_headers, requester, urgency="low")
    response = client.put(f"/api/tickets/{ticket['id']}", json={"urgency": "critical"}, headers=auth_headers(requester))
    assert response.status_code == 200, response.json
    for key, minutes in (("first_response_due_at", FIRST_RESPONSE), ("resolution_due_at", RESOLUTION)):
        moved = parse(ticket["sla"][key]) - parse(response.json["sla"][key])
        assert moved == timedelta(minutes=minutes["low"] - minutes["critical"])


def test_held_tickets_have_no_clock_until_released(client, auth_headers, desk, runner):
    headers = auth_headers(desk.admin)
    client.post("/api/admin/blocked-terms", json={"term": "lottery"}, headers=headers)
    held = file(client, auth_headers, desk.requester, title="VPN lottery win")
    assert held["status"] == "held"
    assert held["sla"]["first_response_due_at"] is None and held["sla"]["resolution_due_at"] is None
    back_date(held, created_at=utcnow() - timedelta(days=30))
    assert "0 first response, 0 resolution" in sweep(runner)
    released = client.post(f"/api/tickets/{held['id']}/release", headers=headers).json
    assert parse(released["sla"]["first_response_due_at"]) > utcnow()


# --- The clock: first response, pause, resolution, reopen ---------------------------------------------------------


def test_pause_and_resume_with_a_frozen_clock(app):
    ticket = Ticket(urgency="high", status="assigned")
    sla.start_clock(ticket, T0)
    assert ticket.first_response_due_at == T0 + timedelta(hours=2)
    assert ticket.resolution_due_at == T0 + timedelta(hours=24)
    sla.on_status_change(ticket, "assigned", "waiting_on_requester", T0 + timedelta(hours=1), by_staff=True)
    ticket.status = "waiting_on_requester"
    assert ticket.first_responded_at == T0 + timedelta(hours=1) and ticket.first_response_breached_at is None
    assert ticket.sla_paused_at == T0 + timedelta(hours=1)
    # Paused for 30 hours: past the original target, yet not breached, since the clock stood still.
    assert not sla.is_breached(ticket, "resolution", T0 + timedelta(hours=31))
    sla.on_status_change(ticket, "waiting_on_requester", "in_progress", T0 + timedelta(hours=31), by_staff=False)
    ticket.status = "in_progress"
    assert ticket.sla_paused_at is None
    assert ticket.resolution_due_at == T0 + timedelta(hours=54)
    assert not sla.is_breached(ticket, "resolution", T0 + timedelta(hours=53))
    assert sla.is_breached(ticket, "resolution", T0 + timedelta(hours=55))
    sla.on_status_change(ticket, "in_progress", "resolved", T0 + timedelta(hours=55), by_staff=True)
    ticket.status = "resolved"
    assert ticket.resolution_breached_at == T0 + timedelta(hours=55)  # late: recorded when resolved
    sla.on_status_change(ticket, "resolved", "open", T0 + timedelta(hours=60), by_staff=False)
    ticket.status = "open"
    assert ticket.resolution_due_at == T0 + timedelta(hours=84) and ticket.resolution_breached_at is None
    assert ticket.first_responded_at == T0 + timedelta(hours=1)


def test_a_late_first_response_is_recorded_as_a_breach(app):
    ticket = Ticket(urgency="critical", status="assigned")
    sla.start_clock(ticket, T0)
    sla.stamp_first_response(ticket, T0 + timedelta(hours=1))
    assert ticket.first_response_breached_at == T0 + timedelta(hours=1)
    sla.stamp_first_response(ticket, T0 + timedelta(hours=2))
    assert ticket.first_responded_at == T0 + timedelta(hours=1)


def test_staff_status_changes_stamp_the_first_response_the_requesters_do_not(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    closed = set_status(client, auth_headers, desk.requester, ticket, "closed")
    assert closed["sla"]["first_responded_at"] is None
    other = file_for_agent(client, auth_headers, desk)
    working = set_status(client, auth_headers, desk.agent, other, "in_progress")
    assert parse(working["sla"]["first_responded_at"]) >= parse(other["created_at"])


def test_waiting_on_the_requester_pauses_the_resolution_clock(client, auth_headers, desk):
    ticket = file(client, auth_headers, desk.requester)
    waiting = set_status(client, auth_headers, desk.agent, ticket, "waiting_on_requester")
    assert waiting["sla"]["paused_at"] is not None
    due = parse(waiting["sla"]["resolution_due_at"])
    back_date(ticket, sla_paused_at=parse(waiting["sla"]["paused_at"]) - timedelta(hours=3))
    resumed = set_status(client, auth_headers, desk.requester, ticket, "in_progress")
    assert resumed["sla"]["paused_at"] is None
    shift = parse(resumed["sla"]["resolution_due_at"]) - due
    assert timedelta(hours=3) <= shift < timedelta(hours=3, minutes=1)


# --- The sweep -----------------------------------------------------------------------------------------------------


def test_sweep_records_breaches_and_notifies_assignee_and_leads_once(client, auth_headers, desk, runner):
    late_response = file_for_agent(client, auth_headers, desk)
    late_resolution = file_for_agent(client, auth_headers, desk)
    set_status(client, auth_headers, desk.agent, late_resolution, "in_progress")
    on_time = file_for_agent(client, auth_headers, desk)
    paused = file_for_agent(client, auth_headers, desk)
    set_status(client, auth_headers, desk.agent, paused, "waiting_on_requester")
    past = utcnow() - timedelta(minutes=1)
    back_date(late_response, first_response_due_at=past)
    back_date(late_resolution, resolution_due_at=past)
    # Waiting on its requester since before its due date: the clock stopped in time.
    back_date(paused, resolution_due_at=past, sla_paused_at=past - timedelta(minutes=5))
    back_date(on_time, first_response_due_at=utcnow() + timedelta(minutes=5))
    assert "Would record: 1 first-response and 1 resolution" in sweep(runner, "--dry-run")
    assert breach_notifications() == []

    output = sweep(runner)
    assert "Breaches recorded: 1 first response, 1 resolution" in output
    notified = sorted(breach_notifications())
    expected = sorted(
        (user.id, f"SLA breached: {ticket['number']} ({kind})")
        for ticket, kind in ((late_response, "first response"), (late_resolution, "resolution"))
        for user in (desk.agent, desk.lead)
    )
    assert notified == expected
    rows = {str(row.id): row for row in db.session.scalars(sa.select(Ticket))}
    assert rows[late_response["id"]].first_response_breached_at is not None
    assert rows[late_resolution["id"]].resolution_breached_at is not None
    assert rows[on_time["id"]].first_response_breached_at is None
    assert rows[paused["id"]].resolution_breached_at is None
    shown = client.get(f"/api/tickets/{late_resolution['id']}", headers=auth_headers(desk.requester)).json["sla"]
    assert shown["resolution_breached"] is True and shown["resolution_breached_at"] is not None
    assert shown["first_response_breached"] is False

    assert "Breaches recorded: 0 first response, 0 resolution" in sweep(runner)
    assert len(breach_notifications()) == len(expected)
    audits = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "ticket.sla_sweep")).all()
    assert [entry.changes for entry in audits] == [{"first_response_breaches": 1, "resolution_breaches": 1}]


def test_a_backlog_larger_than_a_chunk_is_swept_in_chunks_each_breach_once(app, client, auth_headers, desk, runner):
    app.config["SLA_SWEEP_CHUNK"] = 2
    tickets = [file_for_agent(client, auth_headers, desk, desk.lead) for _ in range(5)]  # leads: no daily limit
    recipients = (desk.agent, desk.lead)
    past = utcnow() - timedelta(minutes=1)
    for ticket in tickets:
        back_date(ticket, first_response_due_at=past)
    for ticket in tickets[:3]:
        back_date(ticket, resolution_due_at=past)

    assert "Breaches recorded: 5 first response, 3 resolution" in sweep(runner)
    assert sorted(breach_notifications()) == sorted(
        [(user.id, f"SLA breached: {ticket['number']} (first response)") for ticket in tickets for user in recipients]
        + [(user.id, f"SLA breached: {ticket['number']} (resolution)") for ticket in tickets[:3] for user in recipients]
    )
    audits = db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "ticket.sla_sweep")).all()
    # One entry per transaction: (2, 2), then (2, 1) which ends the resolution breaches, then (1, 0).
    chunks = [(entry.changes["first_response_breaches"], entry.changes["resolution_breaches"]) for entry in audits]
    assert sorted(chunks) == [(1, 0), (2, 1), (2, 2)]
    assert "Breaches recorded: 0 first response, 0 resolution" in sweep(runner)
    assert len(breach_notifications()) == 16


def test_a_failing_sweep_records_nothing(app, client, auth_headers, desk, monkeypatch):
    ticket = file_for_agent(client, auth_headers, desk)
    back_date(ticket, first_response_due_at=utcnow() - timedelta(minutes=1))

    def broken(*args, **changes):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sla.audit, "record", broken)  # the chunk's last write: the claim and notifications are undone
    with pytest.raises(RuntimeError):
        sla.sweep()
    db.session.expire_all()
    assert db.session.get(Ticket, uuid.UUID(ticket["id"])).first_response_breached_at is None
    assert breach_notifications() == []


def test_an_unassigned_breach_escalates_to_the_leads_only(client, auth_headers, desk, runner):
    ticket = file(client, auth_headers, desk.requester)
    back_date(ticket, assignee_id=None, status="open", first_response_due_at=utcnow() - timedelta(seconds=1))
    sweep(runner)
    assert [user_id for user_id, _ in breach_notifications()] == [desk.lead.id]


def test_a_reopened_ticket_breaching_again_is_a_new_breach(client, auth_headers, desk, runner):
    ticket = file_for_agent(client, auth_headers, desk)
    set_status(client, auth_headers, desk.agent, ticket, "in_progress")
    back_date(ticket, resolution_due_at=utcnow() - timedelta(minutes=1))
    sweep(runner)
    set_status(client, auth_headers, desk.agent, ticket, "resolved")
    reopened = set_status(client, auth_headers, desk.requester, ticket, "open")
    assert reopened["sla"]["resolution_breached"] is False and parse(reopened["sla"]["resolution_due_at"]) > utcnow()
    back_date(ticket, resolution_due_at=utcnow() - timedelta(minutes=1))
    sweep(runner)
    assert len(breach_notifications()) == 4  # agent and lead, twice


def test_a_breach_mails_the_assignee_and_the_leads_once(smtp_sink, client, auth_headers, desk, runner, monkeypatch):
    """E-mail through a real SMTP server: the sweep's clock frozen past the first-response target of a high ticket
    (2 hours), before its resolution target (24 hours)."""
    ticket = file_for_agent(client, auth_headers, desk)
    assert worker.drain(10)
    smtp_sink.messages.clear()  # whatever filing and assigning sent: only the sweep's mail is looked at
    frozen = parse(ticket["created_at"]) + timedelta(hours=3)
    monkeypatch.setattr(cli, "utcnow", lambda: frozen)

    output = sweep(runner)
    assert "Breaches recorded: 1 first response, 0 resolution" in output
    # The command delivers the mail it queued before exiting: the sink holds everything already.
    assert sorted(message["To"] for message in smtp_sink.messages) == sorted([desk.agent.email, desk.lead.email])
    for message in smtp_sink.messages:
        assert message["Subject"] == f"SLA breached: {ticket['number']} (first response)"
        assert BODY["title"] in message.get_payload()

    assert "Breaches recorded: 0 first response, 0 resolution" in sweep(runner)
    assert worker.drain(10)
    assert len(smtp_sink.messages) == 2


# --- The `breached` filter ------------------------------------------------------------------------------------------


def test_breached_filter_lists_recorded_and_live_breaches(client, auth_headers, desk, runner):
    recorded = file(client, auth_headers, desk.requester)
    live = file(client, auth_headers, desk.requester)
    fine = file(client, auth_headers, desk.requester)
    no_clock = file(client, auth_headers, desk.requester)  # as tickets filed before the SLA existed
    back_date(no_clock, first_response_due_at=None, resolution_due_at=None)
    back_date(recorded, first_response_due_at=utcnow() - timedelta(minutes=1))
    sweep(runner)
    back_date(live, resolution_due_at=utcnow() - timedelta(seconds=1))  # passed, not swept yet

    def listed(value, user=desk.lead):
        response = client.get(f"/api/tickets?breached={value}&per_page=100", headers=auth_headers(user))
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]}

    assert listed("true") == {recorded["id"], live["id"]}
    assert {recorded["id"], live["id"]}.isdisjoint(listed("false")) and {fine["id"], no_clock["id"]} <= listed("false")
    assert listed("true", desk.requester) == {recorded["id"], live["id"]}
    assert client.get("/api/tickets?breached=maybe", headers=auth_headers(desk.lead)).status_code == 400


# --- Two sweeps at once ----------------------------------------------------------------------------------------------



@pytest.mark.parametrize("chunk_size", [1000, 5])
def test_two_concurrent_sweeps_notify_each_breach_once(app, client, auth_headers, desk, chunk_size):
    """Two sweeps, each in its own thread, app context and connection, held up by a third connection so that their
    transactions overlap: each breach is still recorded and notified exactly once, in one chunk or several."""
    app.config["SLA_SWEEP_CHUNK"] = chunk_size
    tickets = [file_for_agent(client, auth_headers, desk, desk.lead) for _ in range(12)]  # leads: no daily limit
    for ticket in tickets:
        back_date(ticket, first_response_due_at=utcnow() - timedelta(minutes=1))
    results = run_two_overlapping(app, sla.sweep, lock_table="notifications")
    assert sum(result.first_response_breaches for result in results) == 12
    db.session.expire_all()
    notified = breach_notifications()
    assert len(notified) == len(set(notified))
    assert sorted(notified) == sorted(
        (user.id, f"SLA breached: {ticket['number']} (first response)")
        for ticket in tickets
        for user in (desk.agent, desk.lead)
    )


def test_the_ticket_updated_event_dumps_the_ticket_as_staff_see_it(client, auth_headers, desk, runner):
    assigned = file_for_agent(client, auth_headers, desk)
    back_date(assigned, first_response_due_at=utcnow() - timedelta(minutes=1))
    back_date(file(client, auth_headers, desk.requester), assignee_id=None, department_id=None)
    sweep(runner)
    db.session.expire_all()
    tickets = db.session.scalars(sa.select(Ticket)).all()
    assert {ticket.assignee_id is None for ticket in tickets} == {True, False}
    for ticket in tickets:
        assert TicketOut().dump(staff_row(ticket)) == TicketOut().dump(show(ticket, staff=True))


def test_the_events_built_by_the_database_are_those_the_orm_path_builds(app, client, auth_headers, desk, make_user):
    """`tickets_updated` on PostgreSQL (`updated_in_sql`) records and pushes what the ORM path (`updated_from_orm`,
    SQLite's) does, for tickets in every state: views, recipients, scopes, each user's seq order, webhook bodies."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("updated_in_sql is the PostgreSQL path")
    inactive_admin = make_user("admin")
    db.session.execute(sa.update(User).where(User.id == inactive_admin.id).values(is_active=False))
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # a subscriber, never called: the bodies queued are compared
    webhook = {"url": "http://127.0.0.1:9/finstack", "events": ["ticket_updated"]}
    assert client.post("/api/webhooks", json=webhook, headers=auth_headers(desk.admin)).status_code == 201
    second = datetime(2026, 11, 30, 8, 15, 0, tzinfo=UTC)  # no microseconds: `isoformat` leaves them out
    paused = file_for_agent(client, auth_headers, desk)
    set_status(client, auth_headers, desk.agent, paused, "waiting_on_requester")
    closed = file_for_agent(client, auth_headers, desk)
    back_date(
        closed,
        status="closed",
        resolution="Restarted the VPN concentrator",
        resolved_at=second,
        closed_at=second + timedelta(microseconds=5),
        feedback_rating=4,
        feedback_comment="Quick, thanks",
        feedback_at=second,
        first_response_breached_at=second,
        number=1_234_567,  # past six digits
    )
    flagged = file_for_agent(client, auth_headers, desk)
    back_date(flagged, misuse_flag=True, misuse_reasons=["short", "duplicate"], created_at=second)
    by_agent = file(client, auth_headers, desk.agent)  # an agent of the department: sees the staff view
    held = file(client, auth_headers, desk.requester)
    back_date(held, department_id=None, assignee_id=None, first_response_due_at=utcnow() - timedelta(days=1))
    held_by_admin = file(client, auth_headers, desk.admin)
    back_date(held_by_admin, department_id=None, assignee_id=None, category="network")
    without_chat = file_for_agent(client, auth_headers, desk)
    db.session.execute(sa.delete(Conversation).where(Conversation.ticket_id == uuid.UUID(without_chat["id"])))
    db.session.execute(sa.delete(UserEvent))
    db.session.execute(sa.delete(WebhookDelivery))
    db.session.commit()
    tickets = [paused, closed, flagged, by_agent, held, held_by_admin, without_chat]
    ticket_ids = [uuid.UUID(ticket["id"]) for ticket in tickets]

    by_orm = _events_of(events.updated_from_orm, ticket_ids)
    by_sql = _events_of(events.updated_in_sql, ticket_ids)
    assert by_sql == by_orm
    logged, pushed, posted = by_sql
    assert {payload["id"] for _, payload, _ in logged} == {ticket["id"] for ticket in tickets}
    assert {user_id for user_id, _, _ in logged} == {desk.requester.id, desk.agent.id, desk.admin.id}
    assert len(posted) == len(tickets)
    assert any(rooms == [f"department:{desk.department_id}"] for _, _, _, rooms in pushed)


def _events_of(path, ticket_ids):
    """What `path(ticket_ids)` recorded (user, view, scope; seqs checked against the pushes and each user's ticket
    order), pushed (payload, users, rooms, in order) and queued for the webhooks (bodies' data), then cleared."""
    pushed = []

    def deliver(event, payload, seqs, rooms):
        pushed.append((event, payload, seqs, rooms))

    original, core_events.deliver = core_events.deliver, deliver
    try:
        path(ticket_ids)
        db.session.commit()
    finally:
        core_events.deliver = original
    logged = db.session.scalars(sa.select(UserEvent).order_by(UserEvent.user_id, UserEvent.seq)).all()
    numbers = {row.id: row.number for row in db.session.execute(sa.select(Ticket.id, Ticket.number))}
    seqs = {(str(event.user_id), event.payload["id"]): event.seq for event in logged}
    for _, payload, delivered, _ in pushed:
        for user_id, seq in delivered:
            assert seqs[(user_id, payload["id"])] == seq
    for user_id in {event.user_id for event in logged}:
        own = [event for event in logged if event.user_id == user_id]  # in seq order
        assert [numbers[uuid.UUID(event.payload["id"])] for event in own] == sorted(
            numbers[uuid.UUID(event.payload["id"])] for event in own
        )
    posted = db.session.scalars(sa.select(WebhookDelivery.body)).all()
    db.session.execute(sa.delete(UserEvent))
    db.session.execute(sa.delete(WebhookDelivery))
    db.session.commit()
    return (
        sorted(((event.user_id, event.payload, event.scope) for event in logged), key=lambda item: str(item[:2])),
        [(event, payload, [user_id for user_id, _ in delivered], rooms) for event, payload, delivered, rooms in pushed],
        sorted((body["data"] for body in posted), key=lambda data: data["id"]),
    )
