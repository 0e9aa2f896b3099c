"""`flask users …` keeps the API's rules and leaves the same audit trail; the README's examples run (8.2)."""

import getpass
import re
import shlex
from pathlib import Path

import sqlalchemy as sa
from conftest import PASSWORD

from finstack.audit.models import AuditLog
from finstack.extensions import db
from finstack.users.models import User

README = Path(__file__).resolve().parent.parent / "README.md"
PROMPTED_PASSWORD = "typed-at-the-prompt"


def user_named(username):
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def cli_entries():
    return db.session.scalars(sa.select(AuditLog).where(AuditLog.actor_label.is_not(None))).all()


def test_deactivate_refuses_the_last_active_admin(runner, admin):
    result = runner.invoke(args=["users", "deactivate", admin.username])
    assert result.exit_code != 0
    assert "last active admin" in result.output
    assert user_named(admin.username).is_active


def test_set_role_refuses_to_demote_the_last_active_admin(runner, admin):
    result = runner.invoke(args=["users", "set-role", admin.username, "member"])
    assert result.exit_code != 0
    assert user_named(admin.username).role == "admin"


def test_activate_set_role_and_reset_password_work_and_are_audited_as_the_cli(runner, client, member):
    for args in (
        ["deactivate", member.username],
        ["activate", member.username],
        ["set-role", member.username, "manager"],
        ["reset-password", member.username, "--password", "a-new-password"],
    ):
        result = runner.invoke(args=["users", *args])
        assert result.exit_code == 0, result.output
    user = user_named(member.username)
    assert user.is_active and user.role == "manager"
    login = client.post("/api/auth/login", json={"username": member.username, "password": "a-new-password"})
    assert login.status_code == 200

    actions = [entry.action for entry in cli_entries()]
    for action in ("user.deactivate", "user.activate", "user.role_changed", "user.password_reset"):
        assert action in actions
    assert {(entry.actor_id, entry.actor_label) for entry in cli_entries()} == {(None, f"cli:{getpass.getuser()}")}


def test_the_audit_log_api_shows_the_cli_as_the_actor(runner, client, admin, member, auth_headers):
    assert runner.invoke(args=["users", "set-role", member.username, "manager"]).exit_code == 0
    response = client.get("/api/audit-logs", query_string={"action": "user.role_changed"}, headers=auth_headers(admin))
    [item] = response.get_json()["items"]
    assert item["actor_id"] is None and item["actor_label"] == f"cli:{getpass.getuser()}"


def readme_cli_commands():
    """The `flask users …` lines of the README's CLI block, as argv lists."""
    section = README.read_text().split("## CLI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("flask users ")]


def test_the_readme_cli_examples_run_as_written(runner, admin):
    commands = readme_cli_commands()
    assert len(commands) >= 5
    for argv in commands:
        assert argv[0] == "flask"
        # Passwords are typed at the prompt (twice: entry and confirmation), never put on the command line.
        result = runner.invoke(args=argv[1:], input=f"{PROMPTED_PASSWORD}\n{PROMPTED_PASSWORD}\n")
        assert result.exit_code == 0, (argv, result.output)
    assert user_named("jodoe") is not None
    assert len(cli_entries()) >= len(commands) - 1  # every write; `list` only reads


def test_set_password_is_kept_as_an_alias(runner, client, member):
    result = runner.invoke(args=["users", "set-password", member.username, "--password", "alias-password"])
    assert result.exit_code == 0, result.output
    assert client.post("/api/auth/login", json={"username": member.username, "password": PASSWORD}).status_code == 401
