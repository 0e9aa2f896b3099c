"""`flask attachments clean`: remove partial uploads and stored files no attachment owns."""

import click
from flask.cli import AppGroup

from finstack.attachments.cleanup import clean_uploads

attachments_cli = AppGroup("attachments", help="Attachment files.")


@attachments_cli.command("clean")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=None,
    help="Only remove files older than this many seconds (default: UPLOAD_CLEANUP_AGE_SECONDS, 3600).",
)
def clean(older_than):
    """Remove partial uploads and stored files that no task or chat attachment owns (what a crash leaves)."""
    result = clean_uploads(older_than)
    click.echo(f"Removed {result.partials} partial upload(s) and {result.orphans} unowned file(s).")
