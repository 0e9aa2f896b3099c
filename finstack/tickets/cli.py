"""`flask tickets …`: scheduled helpdesk jobs, meant for cron (exit code 0 on success, non-zero on failure)."""

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from finstack.tickets import misuse
from finstack.users.cli import cli_actor

tickets_cli = AppGroup("tickets", help="Scheduled helpdesk jobs.")


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
