"""What every CLI command that notifies shares: `--mail-timeout`, and delivering the e-mail its run queued."""

import click

from finstack.jobs import worker
from finstack.notifications.service import MAIL_JOB

mail_timeout_option = click.option(
    "--mail-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to spend delivering the e-mail this run queued before exiting.",
)


def deliver_queued_mail(queued, mail_timeout, since):
    """When the run `queued` e-mail, deliver the mail jobs created `since` within `mail_timeout` seconds, or fail
    the command (non-zero exit): the notifications themselves are stored either way."""
    if queued and not worker.drain(mail_timeout, kinds=[MAIL_JOB], created_since=since):
        raise click.ClickException(
            f"E-mail still queued after {mail_timeout:g} s; the notifications are stored, some e-mails were not sent"
        )
