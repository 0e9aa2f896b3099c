"""Helpdesk SLA clocks: first-response and resolution targets per urgency, the pause, breaches and their sweep.

Targets are wall-clock minutes (not business hours) from the moment a ticket is routed: SLA_FIRST_RESPONSE_MINUTES
and SLA_RESOLUTION_MINUTES per urgency. A held ticket has no clock until an admin releases it (routing starts it);
a rejected one never gets one.

- First response: stamped once by `stamp_first_response`, by the first status change staff make (to in_progress,
  waiting_on_requester, resolved or closed) or by the first public reply staff send in the ticket's chat
  (`tickets.chat`; internal notes do not count). An assignment alone is not a response: the requester hears nothing.
- Resolution: the clock runs while the ticket is active; entering waiting_on_requester records `sla_paused_at`, and
  leaving it pushes `resolution_due_at` by the time paused. Resolving or closing stops it (late: the breach is
  recorded then). A reopen restarts it:
  a full resolution target from the reopen, and the resolution breach is cleared, so a new lateness is a new breach.
- A breach is *live* as soon as a running clock passes its target (what `GET /api/tickets?breached=` and the ticket's
  `sla` state show) and *recorded* when the sweep (or a late response) stamps `*_breached_at`.

`sweep` records and escalates breaches set-based and once each: one UPDATE … RETURNING per kind of breach claims the
tickets (their stamp still empty, re-checked in its WHERE; on PostgreSQL the candidates are locked FOR UPDATE SKIP
LOCKED, SQLite serialises writers), so two sweeps at once never notify a breach twice. The assignee and the
department's leads are notified in the same transaction; e-mail goes after the commit, and so does the tickets'
`ticket_updated` event (each chunk announces `signals.breaches_recorded`; `finstack/tickets/events.py` listens). A
claim takes at most SLA_SWEEP_CHUNK tickets per kind and each chunk is its own transaction, looped until none is left:
a backlog (a stopped cron, a mass back-dating) costs many short transactions, not one holding every breach's lock and
row in memory.
"""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from finstack import jobs
from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.db_types import UTCDateTime
from finstack.core.locks import bounded_claim
from finstack.core.time import utcnow
from finstack.extensions import db
from finstack.notifications.service import Draft, notify_from, notify_sweep
from finstack.tickets import signals
from finstack.tickets.access import active_leads
from finstack.tickets.models import ACTIVE_STATUSES, DepartmentAgent, Ticket, reference_in_sql
from finstack.users.models import User

NOTIFICATION_TYPE = "ticket_breached"
# Statuses a staff member moves a ticket to that count as responding to the requester.
RESPONSE_STATUSES = ("in_progress", "waiting_on_requester", "resolved", "closed")
KINDS = {"first_response": "first response", "resolution": "resolution"}


def target(kind, urgency):
    setting = "SLA_FIRST_RESPONSE_MINUTES" if kind == "first_response" else "SLA_RESOLUTION_MINUTES"
    return timedelta(minutes=current_app.config[setting][urgency])


def start_clock(ticket, now):
    """The ticket was routed (created or released): both targets count from `now`."""
    ticket.first_response_due_at = now + target("first_response", ticket.urgency)
    ticket.resolution_due_at = now + target("resolution", ticket.urgency)


def retarget(ticket, previous_urgency):
    """The urgency changed: each due date moves by the difference between the two targets."""
    if ticket.first_response_due_at is None or previous_urgency == ticket.urgency:
        return
    for kind in KINDS:
        shift = target(kind, ticket.urgency) - target(kind, previous_urgency)
        setattr(ticket, f"{kind}_due_at", getattr(ticket, f"{kind}_due_at") + shift)


def stamp_first_response(ticket, when):
    """The first response to the requester, at `when`; later calls change nothing. A late one records its breach."""
    if ticket.first_responded_at is not None or ticket.first_response_due_at is None:
        return
    ticket.first_responded_at = when
    if when > ticket.first_response_due_at and ticket.first_response_breached_at is None:
        ticket.first_response_breached_at = when


def on_status_change(ticket, previous, status, now, *, by_staff):
    """Keep the clocks in step with a status change (called before `ticket.status` is set)."""
    if ticket.resolution_due_at is None:
        return
    if by_staff and status in RESPONSE_STATUSES:
        stamp_first_response(ticket, now)
    if previous == "waiting_on_requester" and ticket.sla_paused_at is not None:
        ticket.resolution_due_at += now - ticket.sla_paused_at
        ticket.sla_paused_at = None
    if status == "waiting_on_requester":
        ticket.sla_paused_at = now
    elif status in ("resolved", "closed") and previous in ACTIVE_STATUSES:
        if now > ticket.resolution_due_at and ticket.resolution_breached_at is None:
            ticket.resolution_breached_at = now
    elif status == "open":
        ticket.resolution_due_at = now + target("resolution", ticket.urgency)
        ticket.resolution_breached_at = None


# --- Breaches: SQL and Python, which agree -------------------------------------------------------------------------


def _at(now):
    return sa.literal(now, UTCDateTime)


def overdue_clause(ticket, kind, now):
    """SQL: `ticket`'s `kind` clock runs and has passed its target at `now` (a paused resolution clock stopped at
    `sla_paused_at`). False, never NULL, for a ticket without a clock, so that its negation holds there too."""
    due = getattr(ticket, f"{kind}_due_at")
    running = sa.and_(ticket.status.in_(ACTIVE_STATUSES), due.is_not(None))
    if kind == "first_response":
        return sa.and_(running, ticket.first_responded_at.is_(None), due < _at(now))
    return sa.and_(running, due < sa.func.coalesce(ticket.sla_paused_at, _at(now)))


def breached_clause(ticket, now):
    """SQL: the ticket breached either target, recorded or live (the `breached` list filter)."""
    return sa.or_(
        ticket.first_response_breached_at.is_not(None),
        ticket.resolution_breached_at.is_not(None),
        overdue_clause(ticket, "first_response", now),
        overdue_clause(ticket, "resolution", now),
    )


def is_breached(ticket, kind, now):
    """Python twin of `breached_clause` for one kind."""
    if getattr(ticket, f"{kind}_breached_at") is not None:
        return True
    due = getattr(ticket, f"{kind}_due_at")
    if due is None or ticket.status not in ACTIVE_STATUSES:
        return False
    if kind == "first_response":
        return ticket.first_responded_at is None and due < now
    return due < (ticket.sla_paused_at or now)


def state(ticket, now=None):
    """The ticket's SLA as the API shows it."""
    now = now or utcnow()
    return {
        "first_response_due_at": ticket.first_response_due_at,
        "first_responded_at": ticket.first_responded_at,
        "first_response_breached": is_breached(ticket, "first_response", now),
        "first_response_breached_at": ticket.first_response_breached_at,
        "resolution_due_at": ticket.resolution_due_at,
        "resolution_breached": is_breached(ticket, "resolution", now),
        "resolution_breached_at": ticket.resolution_breached_at,
        "paused_at": ticket.sla_paused_at,
    }


# --- The sweep ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    first_response_breaches: int
    resolution_breaches: int
    notified_users: int


def count_due(now=None):
    """Breaches a sweep at `now` would record, per kind; changes nothing."""
    now = now or utcnow()
    return {
        kind: db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Ticket)
            .where(overdue_clause(Ticket, kind, now), getattr(Ticket, f"{kind}_breached_at").is_(None))
        )
        for kind in KINDS
    }


def _claim_statement(kind, now, limit):
    """UPDATE … RETURNING: stamp at most `limit` unrecorded `kind` breaches (`core.locks.bounded_claim`)."""
    stamp = f"{kind}_breached_at"

    def due(ticket):
        return sa.and_(overdue_clause(ticket, kind, now), getattr(ticket, stamp).is_(None))

    candidate = aliased(Ticket)
    candidates = (
        sa.select(candidate.id)
        .where(due(candidate))
        .limit(limit)
        .with_for_update(of=candidate, skip_locked=True)
    )
    statement = (
        sa.update(Ticket)
        .where(Ticket.id.in_(bounded_claim(candidates, "sla_candidates")), due(Ticket))
        # Only the stamp: `updated_at` is set to itself so its on-update default does not fire.
        .values({stamp: now, "updated_at": Ticket.updated_at})
        .returning(
            Ticket.id,
            Ticket.number,
            Ticket.title,
            Ticket.urgency,
            Ticket.assignee_id,
            Ticket.department_id,
            Ticket.requester_id,
        )
        .execution_options(synchronize_session=False)
    )
    return statement


def _claim(kind, now, limit):
    """The claimed rows (for the notifications)."""
    return db.session.execute(_claim_statement(kind, now, limit)).all()


def _claim_and_notify(kind, now, limit):
    """PostgreSQL: claim (`_claim_statement`) and notify in one statement (`notify_from`): the drafts worded by the
    database as `_drafts` words them, to the assignee (if `notify`'s readers rule lets them read the ticket) and the
    department's active leads (who do), once each. Returns the claimed ticket ids and the recipients `_drafts` names
    (before the readers rule, as the ORM path counts them)."""
    claimed = _claim_statement(kind, now, limit).cte(f"{kind}_claimed")
    assignee, lead = aliased(User), aliased(User)
    reads = permissions.ticket_readers_clause(
        assignee, claimed.c.requester_id, claimed.c.department_id, DepartmentAgent
    )
    recipients = sa.union(
        sa.select(claimed.c.id.label("ticket_id"), claimed.c.assignee_id.label("user_id"), reads.label("reads"))
        .select_from(claimed)
        .join(assignee, assignee.id == claimed.c.assignee_id, isouter=True),
        sa.select(claimed.c.id, DepartmentAgent.user_id, sa.true())
        .select_from(claimed)
        .join(
            DepartmentAgent,
            sa.and_(DepartmentAgent.department_id == claimed.c.department_id, DepartmentAgent.role == "lead"),
        )
        .join(lead, sa.and_(lead.id == DepartmentAgent.user_id, lead.is_active.is_(True))),
    ).cte(f"{kind}_recipients")
    label = KINDS[kind]
    drafts = (
        sa.select(
            recipients.c.user_id,
            sa.literal(NOTIFICATION_TYPE).label("type"),
            ("SLA breached: " + reference_in_sql(claimed.c.number) + f" ({label})").label("title"),
            (f"The {label} target of this " + claimed.c.urgency + " ticket has passed: " + claimed.c.title).label(
                "message"
            ),
            sa.cast(sa.null(), sa.Uuid).label("task_id"),
            claimed.c.id.label("ticket_id"),
        )
        .join_from(recipients, claimed, claimed.c.id == recipients.c.ticket_id)
        .where(recipients.c.reads, recipients.c.user_id.is_not(None))
    )
    ids, users = notify_from(
        drafts,
        sa.select(sa.func.array_agg(claimed.c.id)).scalar_subquery(),
        sa.select(sa.func.array_agg(sa.distinct(recipients.c.user_id))).scalar_subquery(),
    )
    return ids or [], {user_id for user_id in users or () if user_id is not None}


def _drafts(kind, rows, leads):
    drafts = []
    for row in rows:
        title = f"SLA breached: TKT-{row.number:06d} ({KINDS[kind]})"
        message = f"The {KINDS[kind]} target of this {row.urgency} ticket has passed: {row.title}"
        recipients = dict.fromkeys([row.assignee_id, *leads.get(row.department_id, ())])
        drafts.extend(
            Draft(user_id=user_id, type=NOTIFICATION_TYPE, title=title, message=message, ticket_id=row.id)
            for user_id in recipients
            if user_id is not None
        )
    return drafts


def _sweep_chunk(now, limit, kinds):
    """One transaction: claim up to `limit` breaches of each of `kinds`, notify, audit, commit. The claimed ticket ids
    per kind and the notified user ids."""
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            claimed, users = {}, set()
            for kind in kinds:
                claimed[kind], notified = _claim_and_notify(kind, now, limit)
                users |= notified
        else:
            rows = {kind: _claim(kind, now, limit) for kind in kinds}
            leads = active_leads({row.department_id for kind_rows in rows.values() for row in kind_rows})
            drafts = [draft for kind, kind_rows in rows.items() for draft in _drafts(kind, kind_rows, leads)]
            if drafts:
                notify_sweep(drafts)
            claimed = {kind: [row.id for row in kind_rows] for kind, kind_rows in rows.items()}
            users = {draft.user_id for draft in drafts}
        breached = list(dict.fromkeys(ticket_id for ids in claimed.values() for ticket_id in ids))
        if breached:
            signals.breaches_recorded.send(current_app._get_current_object(), ticket_ids=breached)
        if any(claimed.values()):
            audit.record(
                None,
                "ticket.sla_sweep",
                "ticket",
                changes={f"{kind}_breaches": len(claimed.get(kind, ())) for kind in KINDS},
            )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return claimed, users


def sweep(now=None, *, chunk_size=None):
    """Record every breach not yet recorded, notify the assignees and escalate to the leads.

    Works in chunks of at most `chunk_size` (default SLA_SWEEP_CHUNK) breaches per kind, one transaction each
    (audited with its counts). A kind is done once a chunk claims fewer than `chunk_size` of it: what is left of it
    is locked by another transaction (a concurrent sweep, which records it; an edit, after which the next run does),
    and claiming it again would find nothing it may take. If a chunk fails, the chunks before it stay
    recorded and notified, and the next run does the rest.
    """
    now = now or utcnow()
    chunk_size = chunk_size or current_app.config["SLA_SWEEP_CHUNK"]
    totals = dict.fromkeys(KINDS, 0)
    notified = set()
    pending = list(KINDS)
    while pending:
        claimed, users = _sweep_chunk(now, chunk_size, pending)
        for kind, ids in claimed.items():
            totals[kind] += len(ids)
        notified |= users
        pending = [kind for kind, ids in claimed.items() if len(ids) == chunk_size]
    return SweepResult(
        first_response_breaches=totals["first_response"],
        resolution_breaches=totals["resolution"],
        notified_users=len(notified),
    )


# The worker runs the sweep every SCHEDULE_SLA_SECONDS (`flask tickets sweep-sla` stays for cron).
jobs.periodic("tickets.sweep_sla", "SCHEDULE_SLA_SECONDS")(sweep)
