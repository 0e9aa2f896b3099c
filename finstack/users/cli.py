"""`flask users …`: account administration from the shell."""

import click
from flask.cli import AppGroup
from marshmallow import ValidationError

from finstack.errors import ApiError
from finstack.users import service
from finstack.users.models import ROLES
from finstack.users.schemas import RegisterIn

users_cli = AppGroup("users", help="Create, list and manage user accounts.")


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
    try:
        user = service.create_user(**data, role=role, department=department)
    except ApiError as exc:
        raise click.ClickException(f"{exc.message}: {exc.details}") from exc
    click.echo(f"Created {user.role} {user.username} ({user.id})")


@users_cli.command("list")
def list_users():
    """Every account, active or not."""
    click.echo(f"{'username':<24} {'email':<36} {'role':<8} active")
    for user in service.list_all_users():
        click.echo(f"{user.username:<24} {user.email:<36} {user.role:<8} {'yes' if user.is_active else 'no'}")


@users_cli.command("set-password")
@click.argument("login")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password(login, password):
    """Set LOGIN's (username or e-mail) password."""
    user = _user_or_fail(login)
    if not 8 <= len(password) <= 128:
        raise click.ClickException("A password has 8 to 128 characters")
    service.set_password(user, password)
    click.echo(f"Password set for {user.username}")


@users_cli.command("deactivate")
@click.argument("login")
def deactivate(login):
    """Deactivate LOGIN: it can no longer sign in and its tokens stop working."""
    user = _user_or_fail(login)
    service.set_active(user, False)
    click.echo(f"Deactivated {user.username}")
