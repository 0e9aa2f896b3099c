"""`flask tickets …`: scheduled helpdesk jobs, meant for cron (exit code 0 on success, non-zero on failure)."""

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from finstack.core.time import utcnow
from finstack.notifications.cli import deliver_queued_mail, mail_timeout_option
from finstack.tickets import misuse, sla
from finstack.users.cli import cli_actor

tickets_cli = AppGroup("tickets", help="Scheduled helpdesk jobs.")


@tickets_cli.command("sweep-sla")
@click.option("--dry-run", is_flag=True, help="Only count the breaches a sweep would record; change nothing.")
@mail_timeout_option
def sweep_sla(dry_run, mail_timeout):
    """Record SLA breaches, notify each ticket's assignee and escalate to its department's leads, once per breach.

    Safe to run from cron every minute, and twice at once. Works in transactions of at most SLA_SWEEP_CHUNK breaches
    of each kind. Exits non-zero when the sweep fails (the chunks committed before stay done, the next run does the
    rest) or when e-mail is still queued after --mail-timeout seconds.
    """
    now = utcnow()
    try:
        if dry_run:
            due = sla.count_due(now)
            click.echo(
                f"Would record: {due['first_response']} first-response and {due['resolution']} resolution breaches"
                " (dry run: nothing changed)"
            )
            return
        result = sla.sweep(now)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"SLA sweep failed, the chunk under way was not changed (earlier ones stay done): {exc}"
        ) from exc
    click.echo(
        f"Breaches recorded: {result.first_response_breaches} first response, {result.resolution_breaches} resolution"
    )
    click.echo(f"Users notified: {result.notified_users}")
    deliver_queued_mail(result.notified_users, mail_timeout, since=now)


@tickets_cli.command("sweep-misuse")
@click.option(
    "--window-hours",
    default=24,
    show_default=True,
    type=click.IntRange(min=1, max=24 * 31),
    help="Look at the tickets filed in this many hours before now.",
)
def sweep_misuse(window_hours):
    """Report requesters showing misuse patterns (high volume, near-duplicate titles, too-short descriptions).

    At most one report per user per UTC day: safe to run from cron as often as wanted, and twice at once.
    """
    try:
        result = misuse.sweep(window_hours=window_hours, actor=cli_actor())
    except SQLAlchemyError as exc:
        raise click.ClickException(f"Misuse sweep failed, nothing was changed: {exc}") from exc
    click.echo(f"Requesters showing a pattern: {result.flagged_users}")
    click.echo(f"Reports created: {result.reports_created}")
