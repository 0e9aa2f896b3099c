"""`flask users …`: account administration from the shell.

Every write goes through the same service functions as the API (same rules: the last active admin stays; same
effects: sessions end) and is audited with the actor `cli:<OS user>`.
"""

import getpass
import os

import click
from flask.cli import AppGroup
from marshmallow import ValidationError

from finstack.audit.service import SystemActor
from finstack.errors import ApiError
from finstack.users import service
from finstack.users.models import ROLES
from finstack.users.schemas import PasswordReset, RegisterIn

users_cli = AppGroup("users", help="Create, list and manage user accounts.")


def cli_actor():
    """The audit log's actor for a CLI write: `cli:<OS user>`."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        name = f"uid{os.getuid()}"
    return SystemActor(f"cli:{name}"[:64])


def _user_or_fail(login):
    user = service.find_by_login(login)
    if user is None:
        raise click.ClickException(f"No user {login!r}")
    return user


def _validated(schema, data):
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise click.ClickException(f"Invalid input: {exc.messages}") from exc


def _run(action, *args):
    """Call a service function; its refusals (ApiError) become a one-line CLI error."""
    try:
        return action(cli_actor(), *args)
    except ApiError as exc:
        details = f": {exc.details}" if exc.details else ""
        raise click.ClickException(f"{exc.message}{details}") from exc


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--full-name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--department", default=None)
def create_user(username, email, full_name, password, role, department):
    """Create an account with any role."""
    data = _validated(
        RegisterIn(),
        {"username": username, "email": email, "full_name": full_name, "password": password},
    )
    user = _run(lambda actor: service.admin_create_user(actor, **data, role=role, department=department))
    click.echo(f"Created {user.role} {user.username} ({user.id})")


@users_cli.command("list")
def list_users():
    """Every account, active or not."""
    click.echo(f"{'username':<24} {'email':<36} {'role':<8} active")
    for user in service.list_all_users():
        click.echo(f"{user.username:<24} {user.email:<36} {user.role:<8} {'yes' if user.is_active else 'no'}")


def _reset_password(login, password):
    user = _user_or_fail(login)
    password = _validated(PasswordReset(), {"new_password": password})["new_password"]
    _run(service.admin_reset_password, user.id, password)
    click.echo(f"Password set for {user.username}; their sessions have ended")


@users_cli.command("reset-password")
@click.argument("login")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def reset_password(login, password):
    """Set LOGIN's (username or e-mail) password; every session of LOGIN ends."""
    _reset_password(login, password)


@users_cli.command("set-password")
@click.argument("login")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password(login, password):
    """Same as reset-password (kept for scripts written before it)."""
    _reset_password(login, password)


@users_cli.command("set-role")
@click.argument("login")
@click.argument("role", type=click.Choice(ROLES))
def set_role(login, role):
    """Give LOGIN the ROLE; the last active admin stays an admin."""
    user = _user_or_fail(login)
    _run(service.admin_update_user, user.id, {"role": role})
    click.echo(f"{user.username} is now {role}")


@users_cli.command("deactivate")
@click.argument("login")
def deactivate(login):
    """Deactivate LOGIN: it can no longer sign in and its tokens and sockets stop working. The last active admin
    cannot be deactivated."""
    user = _user_or_fail(login)
    _run(service.admin_set_active, user.id, False)
    click.echo(f"Deactivated {user.username}")


@users_cli.command("activate")
@click.argument("login")
def activate(login):
    """Reactivate LOGIN: it may sign in again (tokens from before stay invalid)."""
    user = _user_or_fail(login)
    _run(service.admin_set_active, user.id, True)
    click.echo(f"Activated {user.username}")
