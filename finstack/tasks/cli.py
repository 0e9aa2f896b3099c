"""`flask tasks …`: scheduled task jobs, meant for cron (exit code 0 on success, non-zero on failure)."""

from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from finstack.audit.service import record_now
from finstack.core.time import utcnow
from finstack.notifications.cli import deliver_queued_mail, mail_timeout_option
from finstack.tasks import counts as task_counts
from finstack.tasks import overdue, reminders, service
from finstack.users.cli import cli_actor

tasks_cli = AppGroup("tasks", help="Scheduled task jobs.")

# Above this many tasks to notify, the sweep shows a progress bar.
PROGRESS_THRESHOLD = 10_000


@tasks_cli.command("sweep-overdue")
@click.option("--dry-run", is_flag=True, help="Only count what would be notified; change nothing.")
@mail_timeout_option
def sweep_overdue(dry_run, mail_timeout):
    """Notify assignees of overdue tasks, once per task per overdue period (again after 24 hours).

    Safe to run from cron every few minutes, and safe to run twice at once. Exits non-zero when the sweep
    fails (nothing is then changed) or when e-mail is still queued after --mail-timeout seconds.
    """
    now = utcnow()
    try:
        counts = overdue.count_overdue(now)
        click.echo(f"Overdue tasks: {counts.overdue_tasks}")
        if dry_run:
            click.echo(f"Would notify: {counts.due_tasks} tasks, {counts.due_users} users (dry run: nothing changed)")
            return
        if counts.due_tasks > PROGRESS_THRESHOLD:
            with click.progressbar(length=counts.due_tasks, label="Claiming overdue tasks") as bar:
                result = overdue.sweep(now, progress=bar.update)
        else:
            result = overdue.sweep(now)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"Overdue sweep failed, nothing was changed: {exc}") from exc
    click.echo(f"Notified now: {result.notified_tasks} tasks, {result.notified_users} users")
    click.echo(f"E-mails queued: {result.emails_queued}")
    deliver_queued_mail(result.emails_queued, mail_timeout, since=now)


@tasks_cli.command("send-reminders")
@mail_timeout_option
def send_reminders(mail_timeout):
    """Send the task reminders whose time has come, each exactly once (safe to run twice at once, and from cron).

    Exits non-zero when sending fails (nothing is then changed) or when e-mail is still queued after --mail-timeout
    seconds.
    """
    now = utcnow()
    try:
        result = reminders.send_due()
    except SQLAlchemyError as exc:
        raise click.ClickException(f"Sending reminders failed, nothing was changed: {exc}") from exc
    click.echo(f"Reminders sent: {result.sent}")
    deliver_queued_mail(result.sent, mail_timeout, since=now)


@tasks_cli.command("purge-trash")
@click.option(
    "--older-than",
    "days",
    default=30,
    show_default=True,
    type=click.IntRange(min=0),
    help="Purge tasks trashed more than this many days ago (0: everything in the trash).",
)
def purge_trash(days):
    """Delete for good the tasks trashed more than --older-than days ago, with their comments, attachments and chat.

    Deletes 10,000 tasks per transaction (files are removed once each commits), shows a progress bar on a terminal,
    and is safe to run again: a second run purges nothing. Audited once per run (`task.purge`).
    """
    cutoff = utcnow() - timedelta(days=days)
    try:
        total = service.count_purgeable(cutoff)
        with click.progressbar(length=total, label="Purging trashed tasks") as bar:
            purged = service.purge_trash(cutoff, progress=bar.update)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"Purge failed (batches committed before it stay purged): {exc}") from exc
    record_now(cli_actor(), "task.purge", "task", None, {"older_than_days": days, "cutoff": cutoff, "purged": purged})
    click.echo(f"Purged: {purged} tasks trashed before {cutoff.isoformat()}")


stats_cli = AppGroup("stats", help="The maintained task counts of the dashboards and reports.")


@stats_cli.command("rebuild")
def rebuild_stats():
    """Recompute the task counts from the tasks in one transaction (writers wait) and print every count changed.

    The counts are kept by database triggers, so a rebuild changes nothing unless someone edited the table.
    """
    changes = task_counts.rebuild()
    for dimension, key, status, before, after in changes:
        click.echo(f"{dimension} {key or '-'} {status}: {0 if before is None else before} -> {after or 0}")
    click.echo(f"Counts changed: {len(changes)}")
