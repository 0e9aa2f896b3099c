"""`flask seed demo`: fill the database with demo users and tasks."""

import click
from flask.cli import AppGroup

from finstack.seed import service

seed_cli = AppGroup("seed", help="Fill the database with demo data.")


@seed_cli.command("demo")
@click.option("--users", "user_count", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--tasks", "task_count", default=1_000, show_default=True, type=click.IntRange(0, 50_000_000))
@click.option("--seed", "random_seed", default=None, type=int, help="Make the data reproducible.")
def demo(user_count, task_count, random_seed):
    """Add USERS demo users (password 'demo-password') and TASKS tasks among them."""
    rng = service.make_rng(random_seed)
    user_ids = service.seed_users(user_count, rng)
    click.echo(f"Added {len(user_ids)} users (password {service.DEMO_PASSWORD!r})")
    with click.progressbar(length=task_count, label="Tasks") as bar:
        service.seed_tasks(task_count, user_ids, rng, progress=bar.update)
    click.echo(f"Added {task_count} tasks")
