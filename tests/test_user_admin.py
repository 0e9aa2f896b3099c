"""Admin user management: who may, the last-admin and self rules, token revocation, audit entries."""

import pytest
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.extensions import db
from tests.conftest import PASSWORD

NEW_USER = {
    "username": "newbie",
    "email": "Newbie@Example.com",
    "password": "long-enough-pass",
    "full_name": "New Bie",
    "role": "manager",
    "department": "accounts",
}


def actions():
    return db.session.scalars(sa.select(AuditLog.action).order_by(AuditLog.created_at)).all()


def test_admin_creates_a_user_with_role_and_department(client, auth_headers, admin):
    response = client.post("/api/users", json=NEW_USER, headers=auth_headers(admin))
    assert response.status_code == 201, response.json
    assert (response.json["role"], response.json["department"], response.json["email"]) == (
        "manager",
        "accounts",
        "newbie@example.com",
    )
    login = client.post("/api/auth/login", json={"username": "newbie", "password": "long-enough-pass"})
    assert login.status_code == 200
    assert "user.create" in actions()


@pytest.mark.parametrize("role", ["manager", "member"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/users"),
        ("patch", "/api/users/{id}"),
        ("post", "/api/users/{id}/reset-password"),
        ("post", "/api/users/{id}/deactivate"),
        ("post", "/api/users/{id}/activate"),
    ],
)
def test_only_admins_manage_accounts(client, auth_headers, make_user, member, role, method, path):
    actor = make_user(role=role)
    bodies = {"/api/users": NEW_USER, "/api/users/{id}": {"role": "admin"}}
    body = bodies.get(path, {"new_password": "whatever-123"} if "reset" in path else None)
    response = getattr(client, method)(path.format(id=member.id), json=body, headers=auth_headers(actor))
    assert response.status_code == 403
    assert db.session.get(type(member), member.id).role == "member"


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("manager", 200), ("member", 403)])
def test_viewing_an_account(client, auth_headers, make_user, member, role, status):
    response = client.get(f"/api/users/{member.id}", headers=auth_headers(make_user(role=role)))
    assert response.status_code == status
    if status == 200:
        assert response.json["username"] == member.username


def test_unknown_user_is_404(client, auth_headers, admin):
    response = client.get("/api/users/00000000-0000-0000-0000-000000000000", headers=auth_headers(admin))
    assert response.status_code == 404


def test_admin_changes_role_and_department(client, auth_headers, admin, member):
    response = client.patch(
        f"/api/users/{member.id}", json={"role": "manager", "department": "IT"}, headers=auth_headers(admin)
    )
    assert response.status_code == 200
    assert (response.json["role"], response.json["department"]) == ("manager", "IT")
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "user.role_changed"))
    assert entry.changes["role"] == {"from": "member", "to": "manager"}
    entry = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "user.update"))
    assert entry.changes == {"department": {"from": None, "to": "IT"}}


def test_unknown_field_refused(client, auth_headers, admin, member):
    response = client.patch(f"/api/users/{member.id}", json={"is_active": False}, headers=auth_headers(admin))
    assert response.status_code == 400
    assert "is_active" in response.json["details"]


def test_last_active_admin_cannot_be_demoted_or_deactivated(client, auth_headers, admin):
    demote = client.patch(f"/api/users/{admin.id}", json={"role": "member"}, headers=auth_headers(admin))
    assert demote.status_code == 409
    other_admin = client.post("/api/users", json={**NEW_USER, "role": "admin"}, headers=auth_headers(admin)).json
    # With a second admin, the first may be demoted; then the second is the last one.
    assert (
        client.patch(f"/api/users/{admin.id}", json={"role": "member"}, headers=auth_headers(admin)).status_code == 200
    )
    login = client.post("/api/auth/login", json={"username": "newbie", "password": "long-enough-pass"}).json
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    assert client.post(f"/api/users/{other_admin['id']}/deactivate", headers=headers).status_code == 409


def test_nobody_deactivates_themselves(client, auth_headers, admin, make_user):
    make_user(role="admin")
    response = client.post(f"/api/users/{admin.id}/deactivate", headers=auth_headers(admin))
    assert response.status_code == 409


def test_deactivation_ends_tokens_at_once_and_activation_restores_login(client, auth_headers, admin, member):
    token_headers = auth_headers(member)
    assert client.get("/api/auth/me", headers=token_headers).status_code == 200
    response = client.post(f"/api/users/{member.id}/deactivate", headers=auth_headers(admin))
    assert response.status_code == 200 and response.json["is_active"] is False
    assert client.get("/api/auth/me", headers=token_headers).status_code == 401
    assert client.post("/api/auth/login", json={"username": member.username, "password": PASSWORD}).status_code == 403
    assert client.post(f"/api/users/{member.id}/activate", headers=auth_headers(admin)).status_code == 200
    assert client.post("/api/auth/login", json={"username": member.username, "password": PASSWORD}).status_code == 200
    assert {"user.deactivate", "user.activate"} <= set(actions())


def test_reset_password(client, auth_headers, admin, member):
    response = client.post(
        f"/api/users/{member.id}/reset-password", json={"new_password": "brand-new-pass"}, headers=auth_headers(admin)
    )
    assert response.status_code == 200
    assert client.post("/api/auth/login", json={"username": member.username, "password": PASSWORD}).status_code == 401
    login = client.post("/api/auth/login", json={"username": member.username, "password": "brand-new-pass"})
    assert login.status_code == 200
    short = client.post(
        f"/api/users/{member.id}/reset-password", json={"new_password": "x"}, headers=auth_headers(admin)
    )
    assert short.status_code == 400
