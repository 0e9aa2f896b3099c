"""The misuse sweep (004's misuse detector, deterministic) and the admins' review of its reports.

Per requester, over the tickets they filed in the window (the last `window_hours` up to the sweep), three patterns:

- `high_volume`: at least HIGH_VOLUME tickets (the daily limit's default: a requester who keeps hitting it);
- `duplicate_titles`: at least DUPLICATES tickets whose titles are equal once normalised (lower case, without spaces
  and the punctuation in PUNCTUATION) — one measure computed in SQL the same way on SQLite and PostgreSQL;
- `short_descriptions`: at least SHORT_DESCRIPTIONS tickets whose trimmed description is under SHORT_DESCRIPTION
  characters.

A requester showing any of them gets one report per UTC day of the sweep, with the patterns and, per pattern, the
ticket numbers behind it. Set-based: on PostgreSQL one INSERT … SELECT picks the requesters and builds their
evidence; on SQLite one statement reads the flagged requesters' tickets, Python builds the evidence, one inserts the
reports. Idempotent and safe twice at once: the insert skips a (user, day) that has a report (unique constraint,
ON CONFLICT DO NOTHING; on PostgreSQL a concurrent insert of the same pair waits for the other's commit, then skips).
Deactivated accounts are not reported (there is nothing left to act on).
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from finstack import jobs
from finstack.audit import service as audit
from finstack.core import permissions
from finstack.core.pagination import paginate
from finstack.core.sql import count_where, json_object
from finstack.core.time import utcnow
from finstack.errors import ApiError
from finstack.extensions import db
from finstack.notifications.service import Draft, notify
from finstack.tickets.models import MisuseReport, Ticket, reference_in_sql
from finstack.tickets.service import _insert_ignoring_conflicts
from finstack.users import service as users
from finstack.users.models import User

HIGH_VOLUME = 5
DUPLICATES = 2
SHORT_DESCRIPTION = 20
SHORT_DESCRIPTIONS = 2
PUNCTUATION = " .,;:!?-_'\"()"
WARNING_TYPE = "misuse_warning"


@dataclass(frozen=True)
class SweepResult:
    flagged_users: int  # requesters showing a pattern in the window
    reports_created: int  # of those, the ones without a report for the day yet


def normalised_title(column):
    """SQL: the title as near-duplicates compare it (on PostgreSQL the nested `replace`s run faster than one
    `translate`)."""
    expression = sa.func.lower(column)
    for character in PUNCTUATION:
        expression = sa.func.replace(expression, character, "")
    return expression


def _short(ticket):
    return sa.func.length(sa.func.trim(ticket.description)) < SHORT_DESCRIPTION


def _flagged_requesters(window):
    """SQL: the requesters showing at least one pattern among the tickets matching `window`."""
    duplicates = (
        sa.select(Ticket.requester_id)
        .where(*window)
        .group_by(Ticket.requester_id, normalised_title(Ticket.title))
        .having(sa.func.count() >= DUPLICATES)
    )
    return (
        sa.select(Ticket.requester_id)
        .join(User, User.id == Ticket.requester_id)
        .where(*window, User.is_active.is_(True))
        .group_by(Ticket.requester_id)
        .having(
            sa.or_(
                sa.func.count() >= HIGH_VOLUME,
                count_where(_short(Ticket)) >= SHORT_DESCRIPTIONS,
                Ticket.requester_id.in_(duplicates),
            )
        )
    )


def _pattern_columns():
    """What the patterns read of a ticket: its requester, number, title as compared, and whether it is short."""
    return (
        Ticket.requester_id,
        Ticket.number,
        Ticket.title,
        normalised_title(Ticket.title).label("normalised"),
        _short(Ticket).label("short"),
    )


def _reference(row):
    return Ticket.reference.fget(row)  # TKT-000123 from the row's number


def _evidence(tickets):
    """The patterns `tickets` (one requester's, by number) show, and the evidence of each."""
    evidence = {}
    if len(tickets) >= HIGH_VOLUME:
        evidence["high_volume"] = {"threshold": HIGH_VOLUME, "tickets": [_reference(row) for row in tickets]}
    groups = {}
    for row in tickets:
        groups.setdefault(row.normalised, []).append(row)
    repeated = [group for group in groups.values() if len(group) >= DUPLICATES]
    if repeated:
        evidence["duplicate_titles"] = [
            {"title": group[0].title, "tickets": [_reference(row) for row in group]} for group in repeated
        ]
    short = [_reference(row) for row in tickets if row.short]
    if len(short) >= SHORT_DESCRIPTIONS:
        evidence["short_descriptions"] = {"under_characters": SHORT_DESCRIPTION, "tickets": short}
    return evidence


def _reports_built_in_python(window, now, window_hours):
    """Read the flagged requesters' tickets, build each report's evidence (`_evidence`) and insert the reports; the
    number of requesters flagged and the ids inserted. SQLite's path (no ordered JSON aggregates there)."""
    rows = db.session.execute(
        sa.select(*_pattern_columns())
        .where(*window, Ticket.requester_id.in_(_flagged_requesters(window)))
        .order_by(Ticket.requester_id, Ticket.number)
    ).all()
    per_user = {}
    for row in rows:
        per_user.setdefault(row.requester_id, []).append(row)
    reports = []
    for user_id, tickets in per_user.items():
        evidence = _evidence(tickets)
        reports.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "day": now.date(),
                "window_hours": window_hours,
                "ticket_count": len(tickets),
                "patterns": list(evidence),
                "evidence": evidence,
                "reviewed": False,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not reports:
        return 0, []
    # executemany (rows batched by the driver's dialect): a multi-row VALUES of the evidence would be keyed and
    # compiled afresh on every run, parameter by parameter.
    table = MisuseReport.__table__
    created = db.session.execute(_insert_ignoring_conflicts(table).returning(table.c.id), reports).all()
    return len(reports), [row.id for row in created]


def _ordered_json_agg(value, order):
    return sa.func.json_agg(aggregate_order_by(value, order), type_=sa.JSON)


def _reports_built_in_sql(window, now, window_hours):
    """PostgreSQL: one INSERT … SELECT that reads the window's tickets once, finds the patterns per requester and
    builds the evidence with ordered `json_agg`s, the same JSON (keys, order, references) `_evidence` builds from the
    rows; the number of requesters flagged and the ids inserted. At a day of a large helpdesk this is a few thousand
    reports over tens of thousands of tickets, which Python would read row by row."""
    tickets = (
        sa.select(*_pattern_columns(), reference_in_sql(Ticket.number).label("reference"))
        .join(User, User.id == Ticket.requester_id)
        .where(*window, User.is_active.is_(True))
        .cte("window_tickets")
    )
    groups = (
        sa.select(
            tickets.c.requester_id,
            sa.func.min(tickets.c.number).label("first_number"),
            json_object(
                [
                    ("title", sa.func.array_agg(aggregate_order_by(tickets.c.title, tickets.c.number))[1]),
                    ("tickets", _ordered_json_agg(tickets.c.reference, tickets.c.number)),
                ]
            ).label("duplicate_group"),
        )
        .group_by(tickets.c.requester_id, tickets.c.normalised)
        .having(sa.func.count() >= DUPLICATES)
        .subquery("duplicate_groups")
    )
    duplicates = (
        sa.select(
            groups.c.requester_id,
            _ordered_json_agg(groups.c.duplicate_group, groups.c.first_number).label("groups"),
        )
        .group_by(groups.c.requester_id)
        .subquery("duplicates")
    )
    per_user = (
        sa.select(
            tickets.c.requester_id,
            sa.func.count().label("ticket_count"),
            _ordered_json_agg(tickets.c.reference, tickets.c.number).label("all_tickets"),
            count_where(tickets.c.short).label("short_count"),
            _ordered_json_agg(tickets.c.reference, tickets.c.number).filter(tickets.c.short).label("short_tickets"),
        )
        .group_by(tickets.c.requester_id)
        .subquery("per_user")
    )
    high_volume = per_user.c.ticket_count >= HIGH_VOLUME
    short = per_user.c.short_count >= SHORT_DESCRIPTIONS
    repeated = duplicates.c.groups.is_not(None)
    evidence = sa.func.json_strip_nulls(
        json_object(
            [
                (
                    "high_volume",
                    sa.case(
                        (high_volume, json_object([("threshold", HIGH_VOLUME), ("tickets", per_user.c.all_tickets)]))
                    ),
                ),
                ("duplicate_titles", duplicates.c.groups),
                (
                    "short_descriptions",
                    sa.case(
                        (
                            short,
                            json_object(
                                [("under_characters", SHORT_DESCRIPTION), ("tickets", per_user.c.short_tickets)]
                            ),
                        )
                    ),
                ),
            ]
        ),
        type_=sa.JSON,
    )
    names = [
        sa.case((condition, name))
        for condition, name in (
            (high_volume, "high_volume"),
            (repeated, "duplicate_titles"),
            (short, "short_descriptions"),
        )
    ]
    table = MisuseReport.__table__
    reports = (
        sa.select(
            sa.func.gen_random_uuid().label("id"),
            per_user.c.requester_id.label("user_id"),
            sa.literal(now.date(), sa.Date).label("day"),
            sa.literal(window_hours, sa.Integer).label("window_hours"),
            per_user.c.ticket_count,
            sa.func.array_to_json(sa.func.array_remove(postgresql.array(names), None), type_=sa.JSON).label("patterns"),
            evidence.label("evidence"),
            sa.false().label("reviewed"),
            sa.literal(now, table.c.created_at.type).label("created_at"),
            sa.literal(now, table.c.updated_at.type).label("updated_at"),
        )
        .outerjoin(duplicates, duplicates.c.requester_id == per_user.c.requester_id)
        .where(high_volume | short | repeated)
        .cte("reports")
    )
    inserted = (
        postgresql.insert(table)
        .from_select(list(reports.c.keys()), sa.select(reports))
        .on_conflict_do_nothing()
        .returning(table.c.id)
        .cte("inserted")
    )
    flagged = sa.select(sa.func.count()).select_from(reports).scalar_subquery()
    row = db.session.execute(sa.select(flagged, sa.select(sa.func.array_agg(inserted.c.id)).scalar_subquery())).one()
    return row[0], row[1] or []


def sweep(now=None, *, window_hours=24, actor=None):
    """Report every requester showing a pattern in the `window_hours` before `now`; commits.

    `actor` is the audit log's (the CLI's `cli:<user>`).
    """
    now = now or utcnow()
    window = (Ticket.created_at > now - timedelta(hours=window_hours), Ticket.created_at <= now)
    in_sql = db.session.get_bind().dialect.name == "postgresql"
    try:
        flagged, created = (_reports_built_in_sql if in_sql else _reports_built_in_python)(window, now, window_hours)
        if created:
            audit.record(
                actor,
                "misuse.sweep",
                "misuse_report",
                changes={"window_hours": window_hours, "reports_created": len(created)},
            )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return SweepResult(flagged_users=flagged, reports_created=len(created))


@jobs.periodic("tickets.sweep_misuse", "SCHEDULE_MISUSE_SECONDS")
def scheduled_sweep():
    """The worker's run of the sweep (`flask tickets sweep-misuse` stays for cron), audited as `worker`."""
    return sweep(actor=audit.SystemActor("worker"))


# --- Review (admins) ---------------------------------------------------------------------------------------------


def _require_admin(actor):
    permissions.require(permissions.can_administer_helpdesk(actor), "Only admins may review misuse reports")


def list_reports(
    actor,
    *,
    page,
    per_page,
    cursor=None,
    reviewed=None,
    user_id=None,
    pattern=None,
    action=None,
    day_from=None,
    day_to=None,
):
    _require_admin(actor)
    statement = sa.select(MisuseReport)
    if reviewed is not None:
        statement = statement.where(MisuseReport.reviewed.is_(reviewed))
    if user_id is not None:
        statement = statement.where(MisuseReport.user_id == user_id)
    if action is not None:
        statement = statement.where(MisuseReport.action == action)
    if day_from is not None:
        statement = statement.where(MisuseReport.day >= day_from)
    if day_to is not None:
        statement = statement.where(MisuseReport.day <= day_to)
    if pattern is not None:
        # The patterns list is short and its names are distinct words: a quoted substring finds one on both databases.
        statement = statement.where(sa.cast(MisuseReport.patterns, sa.Text).contains(f'"{pattern}"'))
    statement = statement.order_by(MisuseReport.day.desc(), MisuseReport.created_at.desc(), MisuseReport.id)
    return paginate(statement, page=page, per_page=per_page, cursor=cursor)


def get_report(actor, report_id):
    _require_admin(actor)
    report = db.session.get(MisuseReport, report_id)
    if report is None:
        raise ApiError(404, "Misuse report not found")
    return report


def _warning(report):
    patterns = ", ".join(pattern.replace("_", " ") for pattern in report.patterns)
    return Draft(
        user_id=report.user_id,
        type=WARNING_TYPE,
        title="A warning about your helpdesk tickets",
        message=f"An admin reviewed your tickets of {report.day.isoformat()} ({patterns}). Please file one ticket "
        "per problem and describe it fully; repeated misuse may suspend your account.",
    )


def review(actor, report_id, *, reviewed=None, action=None):
    """Mark reviewed or not, and take an action once: `warn` notifies the user, `suspend` deactivates the account
    through the users service (which ends their sessions). Taking an action marks the report reviewed."""
    report = get_report(actor, report_id)
    if action is not None and report.action not in (None, action):
        raise ApiError(409, f"The action {report.action!r} was taken on this report already")
    if reviewed is False and (action is not None or report.action is not None):
        raise ApiError(409, "A report acted upon stays reviewed")
    new_action = action is not None and report.action is None
    if new_action:
        report.action = action
        reviewed = True
    if reviewed is not None and reviewed != report.reviewed:
        report.reviewed = reviewed
        report.reviewed_by = actor.id if reviewed else None
        report.reviewed_at = utcnow() if reviewed else None
    audit.record(actor, "misuse_report.review", "misuse_report", report.id, {"reviewed": reviewed, "action": action})
    if new_action and action == "warn":
        notify([_warning(report)], actor)
    if new_action and action == "suspend":
        users.admin_set_active(actor, report.user_id, False)  # refuses the admin themself and the last admin
    db.session.commit()
    return report
