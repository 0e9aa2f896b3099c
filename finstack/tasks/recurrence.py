"""Recurring tasks: closing (or cancelling) an occurrence creates the next one, once.

`repeat` = `{"every": "day"|"week"|"month", "interval": n, "weekdays": [0-6], "month_day": 1-31, "from": "due"|
"completion"}`. The next `task_time` is computed in the time zone of the task's assignee (its creator when
unassigned): the date steps by the rule from the local date of `task_time` (from=due) or of the close (from=
completion), and the local time of day of `task_time` is kept, so a 09:00 task stays at 09:00 across DST changes.

- day: `interval` days later.
- week: without weekdays, 7 * `interval` days later; with weekdays, the next listed weekday later in the same week,
  else the first listed weekday `interval` weeks on (weeks start on Monday).
- month: `month_day` (default: the local day of `task_time`) of the same month if still ahead, else `interval`
  months on; a day past the month's end is its last day (31 → 28 February, 30 April).

Once: every occurrence has `(series_id, occurrence)`, unique. The next is inserted in a savepoint; if another close
(concurrent, or an earlier close before a reopen) already created occurrence n + 1, the insert fails on the unique
index and nothing more is created.
"""

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from finstack.audit import service as audit
from finstack.extensions import db
from finstack.tasks import events, ranks, reminders
from finstack.tasks.models import Task

CLOSING_STATUSES = ("closed", "cancelled")
COPIED = ("entity_name", "task_type", "contact_person_id", "note", "priority", "project_id", "created_by", "repeat")


def start_series(task):
    """Make `task` the first occurrence of its series, unless it already is in one."""
    if task.series_id is None:
        task.series_id = task.id
        task.occurrence = 1


def _add_months(day, months, month_day):
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(month_day, calendar.monthrange(year, month)[1]))


def next_date(repeat, base, task_day):
    """The date after `base` (a local date) that `repeat` gives; `task_day`: the local day of month of task_time."""
    interval = repeat.get("interval", 1)
    if repeat["every"] == "day":
        return base + timedelta(days=interval)
    if repeat["every"] == "week":
        weekdays = repeat.get("weekdays")
        if not weekdays:
            return base + timedelta(weeks=interval)
        later = [day for day in weekdays if day > base.weekday()]
        if later:
            return base + timedelta(days=later[0] - base.weekday())
        week_start = base - timedelta(days=base.weekday())
        return week_start + timedelta(weeks=interval, days=weekdays[0])
    month_day = repeat.get("month_day") or task_day
    this_month = _add_months(base, 0, month_day)
    return this_month if this_month > base else _add_months(base, interval, month_day)


def next_task_time(repeat, task_time, closed_at, zone):
    """The next occurrence's task_time (UTC): the rule's date in `zone` at task_time's local time of day."""
    local = task_time.astimezone(zone)
    base = (task_time if repeat.get("from", "due") == "due" else closed_at).astimezone(zone).date()
    day = next_date(repeat, base, local.day)
    return datetime.combine(day, local.time(), tzinfo=zone).astimezone(UTC)


def _zone_of(task):
    user = task.contact_person or task.creator
    return ZoneInfo(user.timezone)


def after_status_change(task, previous_status, now):
    """Call once `task` went from `previous_status` to its status: a recurring task just closed or cancelled gets its
    next occurrence (the caller commits)."""
    if task.repeat is None or previous_status in CLOSING_STATUSES or task.status not in CLOSING_STATUSES:
        return None
    start_series(task)
    task_time = next_task_time(task.repeat, task.task_time, now, _zone_of(task))
    occurrence = Task(
        **{field: getattr(task, field) for field in COPIED},
        task_time=task_time,
        status="open",
        series_id=task.series_id,
        occurrence=task.occurrence + 1,
    )
    occurrence.tags = task.tags
    occurrence.rank = ranks.top_rank(occurrence.project_id, "open")
    db.session.flush()  # the close itself stays outside the savepoint below
    try:
        with db.session.begin_nested():
            db.session.add(occurrence)
            reminders.set_reminders(occurrence, reminders.copy_for(task, task_time))
            db.session.flush()
    except IntegrityError:
        return None  # this occurrence's successor exists already
    audit.record(
        None,
        "task.recur",
        "task",
        occurrence.id,
        {"from_task_id": task.id, "series_id": task.series_id, "occurrence": occurrence.occurrence},
    )
    events.task_created(occurrence)
    return occurrence
