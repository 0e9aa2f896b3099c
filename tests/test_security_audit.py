"""No account enumeration, case-insensitive usernames, and the audit of security events (issue 7, items 4 and 9)."""

import statistics
import time

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from flask_migrate import upgrade
from sqlalchemy.exc import IntegrityError

from finstack import create_app
from finstack.audit.models import AuditLog
from finstack.auth import service as auth_service
from finstack.extensions import db
from finstack.users.models import User


def login(client, name, password=PASSWORD):
    return client.post("/api/auth/login", json={"username": name, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def entries(action):
    return db.session.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


# -- enumeration ----------------------------------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_get_the_same_answer(client, member):
    unknown = login(client, "nobody-here")
    wrong = login(client, member.username, "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json() == wrong.get_json()
    assert wrong.get_json()["code"] == "invalid_credentials"


@pytest.fixture
def hash_checks(monkeypatch):
    """Counts werkzeug's password-hash checks during login (each still runs for real)."""
    calls = []
    real = auth_service.check_password_hash

    def counting(stored, password):
        calls.append(stored.split("$", 1)[0])
        return real(stored, password)

    monkeypatch.setattr(auth_service, "check_password_hash", counting)
    return calls


def test_a_password_hash_is_checked_for_unknown_users_too_with_the_same_method(client, member, hash_checks):
    login(client, "nobody-here")
    login(client, member.username, "not-the-password")
    assert len(hash_checks) == 2
    assert hash_checks[0] == hash_checks[1] == member.password_hash.split("$", 1)[0]


def test_login_timings_for_unknown_and_known_names(client, member):
    """Figures only (no timed assertion): both run one hash check. Warmed up, then interleaved; medians."""
    names = ("nobody-here", member.username)
    timings = {name: [] for name in names}
    for name in names:
        login(client, name, "not-the-password")
    for _ in range(30):
        for name in names:
            start = time.perf_counter()
            login(client, name, "not-the-password")
            timings[name].append(time.perf_counter() - start)
    for name, values in timings.items():
        print(f"login failure for {name!r}: median {statistics.median(values) * 1000:.2f} ms over {len(values)}")


def test_an_inactive_account_is_told_only_after_a_correct_password(client, runner, member):
    assert runner.invoke(args=["users", "deactivate", member.username]).exit_code == 0
    wrong = login(client, member.username, "not-the-password")
    assert wrong.status_code == 401 and wrong.get_json() == login(client, "nobody-here").get_json()
    right = login(client, member.username)
    assert right.status_code == 403 and right.get_json()["code"] == "account_inactive"


# -- case-insensitive usernames -------------------------------------------------------------------------------------


def test_login_by_username_ignores_case_and_display_keeps_it(client, make_user):
    user = make_user(username="MixedCase")
    for name in ("mixedcase", "MIXEDCASE", "MixedCase"):
        response = login(client, name)
        assert response.status_code == 200, name
        assert response.get_json()["user"]["username"] == "MixedCase"
    assert user.username == "MixedCase"


def test_usernames_differing_only_in_case_are_one(client, make_user):
    make_user(username="Alice")
    response = client.post(
        "/api/auth/register",
        json={"username": "alice", "email": "other@example.com", "password": PASSWORD, "full_name": "Other"},
    )
    assert response.status_code == 409
    assert "username" in response.get_json()["details"]


def test_the_database_refuses_a_username_differing_only_in_case(make_user):
    make_user(username="Carol")
    db.session.add(User(username="CAROL", email="c2@example.com", password_hash="x", full_name="C", role="member"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_the_migration_names_existing_clashes_and_stops(tmp_path, capfd):
    url = f"sqlite:///{tmp_path / 'clash.db'}"
    app = create_app({"FINSTACK_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(revision="0004")
        with db.engine.begin() as connection:
            for number, name in enumerate(("Bob", "bob", "dave")):
                connection.execute(
                    sa.text(
                        "INSERT INTO users (id, username, email, password_hash, full_name, role, is_active, "
                        "created_at, updated_at) VALUES (:id, :name, :email, 'x', 'X', 'member', 1, "
                        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    ),
                    {"id": f"{number:032x}", "name": name, "email": f"{name}{number}@example.com"},
                )
        with pytest.raises(SystemExit):
            upgrade()  # flask-migrate prints the migration's error to stderr and exits 1
        message = capfd.readouterr().err.split("Error: ", 1)[1]
        assert "Bob, bob" in message and "dave" not in message
        assert "UPDATE users SET username" in message
        assert "token_version" not in {column["name"] for column in sa.inspect(db.engine).get_columns("users")}
        db.engine.dispose()


# -- audit ----------------------------------------------------------------------------------------------------------


def test_logins_logouts_and_failures_are_audited(client, member):
    login(client, "nobody-here")
    login(client, member.username, "not-the-password")
    tokens = login(client, member.username).get_json()
    assert client.post("/api/auth/logout", headers=bearer(tokens["access_token"])).status_code == 200

    failed = entries("auth.login_failed")
    assert sorted(entry.changes["login"] for entry in failed) == sorted(["nobody-here", member.username])
    assert {entry.entity_id for entry in failed} == {None, member.id}
    assert all(entry.actor_id is None and entry.ip_address for entry in failed)
    (success,) = entries("auth.login")
    assert success.actor_id == member.id
    (logout,) = entries("auth.logout")
    assert logout.actor_id == member.id


def test_password_change_reset_and_role_change_are_audited(client, admin, member):
    admin_headers = bearer(login(client, admin.username).get_json()["access_token"])
    member_headers = bearer(login(client, member.username).get_json()["access_token"])
    client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another-secret"},
        headers=member_headers,
    )
    client.post(f"/api/users/{member.id}/reset-password", json={"new_password": "third-secret"}, headers=admin_headers)
    client.patch(f"/api/users/{member.id}", json={"role": "manager"}, headers=admin_headers)

    assert [e.actor_id for e in entries("user.password_changed")] == [member.id]
    assert [e.actor_id for e in entries("user.password_reset")] == [admin.id]
    (role,) = entries("user.role_changed")
    assert role.changes == {"role": {"from": "member", "to": "manager"}}
    reasons = sorted(entry.changes["reason"] for entry in entries("auth.tokens_revoked"))
    assert reasons == ["password_changed", "password_reset"]


def test_admins_read_security_events_with_the_existing_filters(client, admin, member):
    login(client, member.username, "not-the-password")
    headers = bearer(login(client, admin.username).get_json()["access_token"])
    response = client.get("/api/audit-logs", query_string={"action": "auth.login_failed"}, headers=headers)
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item["action"] == "auth.login_failed" and item["entity_id"] == str(member.id)
    assert item["actor_id"] is None and item["actor_label"] is None

    member_headers = bearer(login(client, member.username).get_json()["access_token"])
    assert client.get("/api/audit-logs", headers=member_headers).status_code == 403
