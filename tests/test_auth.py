"""Registration, login, token lifetime, refresh, logout and deactivation, through HTTP."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from flask_jwt_extended import decode_token

from finstack.auth.models import TokenFamily
from finstack.extensions import db
from finstack.users.models import User

SECRET_FIELDS = {"password", "password_hash"}


def assert_error(response, status, *fields):
    """The one error shape, with a non-empty message list for each of `fields`."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "code", "details"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    for field in fields:
        messages = body["details"].get(field)
        assert isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages), body
    return body


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(client, name, password=PASSWORD, key="username"):
    return client.post("/api/auth/login", json={key: name, "password": password})


def tokens_for(client, user):
    response = login(client, user.username)
    assert response.status_code == 200, response.json
    return response.json


def user_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def registration(**overrides):
    data = {
        "username": "new.user_1",
        "email": "new.user@example.com",
        "password": "a-long-password",
        "full_name": "New User",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


# --- registration ---------------------------------------------------------------------------------


def test_register_returns_the_created_member_without_secrets(client):
    response = client.post(
        "/api/auth/register",
        json=registration(email="New.User@Example.COM", full_name="  New User  ", phone="+1 555-0100"),
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert SECRET_FIELDS.isdisjoint(body)
    assert uuid.UUID(body["id"])
    assert body["username"] == "new.user_1"
    assert body["email"] == "new.user@example.com"
    assert body["full_name"] == "New User"
    assert body["phone"] == "+1 555-0100"
    assert body["role"] == "member"
    assert body["is_active"] is True
    assert body["created_at"].endswith("+00:00")

    stored = db.session.scalar(sa.select(User).where(User.username == "new.user_1"))
    assert str(stored.id) == body["id"]
    assert stored.email == "new.user@example.com"
    assert stored.password_hash != "a-long-password" and stored.check_password("a-long-password")


def test_registered_user_can_log_in(client):
    assert client.post("/api/auth/register", json=registration()).status_code == 201
    response = login(client, "new.user_1", "a-long-password")
    assert response.status_code == 200, response.json
    assert response.json["user"]["username"] == "new.user_1"


def test_register_cannot_choose_a_role(client):
    response = client.post("/api/auth/register", json=registration(role="admin"))
    assert_error(response, 400, "role")
    assert user_count() == 0


def test_register_duplicate_username_is_409_naming_username(client, member):
    response = client.post("/api/auth/register", json=registration(username=member.username))
    body = assert_error(response, 409, "username")
    assert "email" not in body["details"]
    assert user_count() == 1


@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@Example.Com", "Taken@EXAMPLE.com"])
def test_register_duplicate_email_in_any_case_is_409_naming_email(client, make_user, email):
    make_user(email="taken@example.com")
    response = client.post("/api/auth/register", json=registration(email=email))
    body = assert_error(response, 409, "email")
    assert "username" not in body["details"]
    assert user_count() == 1


def test_register_duplicate_username_and_email_names_both(client, member):
    response = client.post(
        "/api/auth/register",
        json=registration(username=member.username, email=member.email.upper()),
    )
    assert_error(response, 409, "username", "email")


def test_register_missing_everything_gives_a_message_per_field(client):
    response = client.post("/api/auth/register", json={})
    body = assert_error(response, 400, "username", "email", "password", "full_name")
    assert "phone" not in body["details"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "x" * 65),
        ("username", "has space"),
        ("username", "semi;colon"),
        ("username", ""),
        ("username", 123),
        ("username", None),
        ("email", "not-an-email"),
        ("email", "a@"),
        ("email", "a" * 250 + "@example.com"),
        ("email", ["a@example.com"]),
        ("password", "short"),
        ("password", "x" * 129),
        ("password", 12345678),
        ("full_name", ""),
        ("full_name", "   "),
        ("full_name", "x" * 121),
        ("full_name", {"first": "A"}),
        ("phone", "call me maybe"),
        ("phone", "1" * 33),
        ("phone", 5550100),
    ],
)
def test_register_validation_errors(client, field, value):
    response = client.post("/api/auth/register", json=registration(**{field: value}))
    body = assert_error(response, 400, field)
    assert body["error"] == "Validation failed"
    assert set(body["details"]) == {field}
    assert user_count() == 0


def test_register_accepts_boundary_lengths(client):
    response = client.post(
        "/api/auth/register",
        json=registration(username="x" * 64, password="p" * 128, full_name="n" * 120),
    )
    assert response.status_code == 201, response.json
    assert login(client, "x" * 64, "p" * 128).status_code == 200


@pytest.fixture
def closed_client(app_config, request):
    app_config["REGISTRATION_OPEN"] = False
    return request.getfixturevalue("client")


def test_register_is_refused_when_registration_is_closed(closed_client, make_user):
    existing = make_user()
    response = closed_client.post("/api/auth/register", json=registration())
    assert_error(response, 403)
    assert user_count() == 1
    # Existing accounts still sign in.
    assert login(closed_client, existing.username).status_code == 200


# --- login ----------------------------------------------------------------------------------------


def _assert_token_pair(body, user):
    assert set(body) >= {"access_token", "refresh_token", "token_type", "user"}
    assert body["token_type"] == "bearer"
    assert body["user"]["id"] == str(user.id)
    assert body["user"]["username"] == user.username
    assert SECRET_FIELDS.isdisjoint(body["user"])
    access = decode_token(body["access_token"])
    refresh = decode_token(body["refresh_token"])
    assert access["sub"] == refresh["sub"] == str(user.id)
    assert access["type"] == "access" and refresh["type"] == "refresh"


def test_login_by_username(client, member):
    response = login(client, member.username)
    assert response.status_code == 200, response.json
    _assert_token_pair(response.json, member)


@pytest.mark.parametrize("transform", [str.lower, str.upper, str.title])
def test_login_by_email_in_any_case(client, make_user, transform):
    user = make_user(email="mixed.case@example.com")
    response = login(client, transform("mixed.case@example.com"))
    assert response.status_code == 200, response.json
    _assert_token_pair(response.json, user)


def test_login_with_the_email_key(client, member):
    response = login(client, member.email.upper(), key="email")
    assert response.status_code == 200, response.json
    _assert_token_pair(response.json, member)


def test_access_token_works_on_me(client, member):
    tokens = tokens_for(client, member)
    response = client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.json["id"] == str(member.id)
    assert response.json["email"] == member.email
    assert SECRET_FIELDS.isdisjoint(response.json)


@pytest.mark.parametrize(
    "payload",
    [
        {"password": "wrong-password"},
        {"password": PASSWORD.upper()},
        {"password": PASSWORD + " "},
    ],
)
def test_login_with_a_wrong_password_is_401(client, member, payload):
    response = client.post("/api/auth/login", json={"username": member.username, **payload})
    body = assert_error(response, 401)
    assert "access_token" not in body


def test_login_of_an_unknown_user_is_the_same_401(client, member):
    wrong_password = assert_error(login(client, member.username, "wrong-password"), 401)
    unknown = assert_error(login(client, "nobody"), 401)
    assert unknown["error"] == wrong_password["error"]


def test_login_needs_a_name_and_a_password(client):
    assert_error(client.post("/api/auth/login", json={"password": PASSWORD}), 400, "username")
    assert_error(client.post("/api/auth/login", json={"username": "someone"}), 400, "password")
    assert_error(client.post("/api/auth/login", json={"username": "", "password": PASSWORD}), 400, "username")


def test_access_token_lives_24_hours_by_default(client, member):
    body = tokens_for(client, member)
    claims = decode_token(body["access_token"])
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert body["expires_in"] == 24 * 3600
    refresh = decode_token(body["refresh_token"])
    assert refresh["exp"] - refresh["iat"] > 24 * 3600


def test_access_token_lifetime_is_configurable(app_config, request):
    app_config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=30)
    client = request.getfixturevalue("client")
    member = request.getfixturevalue("member")
    body = tokens_for(client, member)
    claims = decode_token(body["access_token"])
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert body["expires_in"] == 30 * 60


# --- deactivation ---------------------------------------------------------------------------------


def test_deactivated_user_cannot_log_in_and_its_tokens_stop_at_once(client, runner, member):
    tokens = tokens_for(client, member)
    assert client.get("/api/auth/me", headers=bearer(tokens["access_token"])).status_code == 200

    result = runner.invoke(args=["users", "deactivate", member.username])
    assert result.exit_code == 0, result.output

    assert_error(login(client, member.username), 403)
    assert_error(login(client, member.email, key="email"), 403)
    assert_error(client.get("/api/auth/me", headers=bearer(tokens["access_token"])), 401)
    assert_error(client.get("/api/users", headers=bearer(tokens["access_token"])), 401)
    assert_error(client.post("/api/auth/refresh", headers=bearer(tokens["refresh_token"])), 401)


def test_deactivated_user_with_a_wrong_password_still_gets_401(client, runner, member):
    assert runner.invoke(args=["users", "deactivate", member.username]).exit_code == 0
    assert_error(login(client, member.username, "wrong-password"), 401)


# --- refresh --------------------------------------------------------------------------------------


def test_refresh_token_gives_a_new_working_access_token(client, member):
    tokens = tokens_for(client, member)
    response = client.post("/api/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "bearer"
    new_access = response.json["access_token"]
    assert new_access != tokens["access_token"]
    claims = decode_token(new_access)
    assert claims["type"] == "access" and claims["sub"] == str(member.id)
    assert claims["exp"] - claims["iat"] == response.json["expires_in"] == 24 * 3600

    me = client.get("/api/auth/me", headers=bearer(new_access))
    assert me.status_code == 200 and me.json["id"] == str(member.id)


def test_refresh_with_an_access_token_is_401(client, member):
    tokens = tokens_for(client, member)
    assert_error(client.post("/api/auth/refresh", headers=bearer(tokens["access_token"])), 401)


def test_refresh_token_is_not_an_access_token(client, member):
    tokens = tokens_for(client, member)
    assert_error(client.get("/api/auth/me", headers=bearer(tokens["refresh_token"])), 401)
    assert_error(client.get("/api/users", headers=bearer(tokens["refresh_token"])), 401)


def test_refresh_without_a_token_is_401(client):
    assert_error(client.post("/api/auth/refresh"), 401)


# --- logout ---------------------------------------------------------------------------------------


def revoked_rows():
    """The ended sign-ins (token families)."""
    return db.session.scalars(sa.select(TokenFamily).where(TokenFamily.revoked_at.is_not(None))).all()


def test_logout_ends_the_sign_in_of_the_presented_access_token(client, member):
    tokens = tokens_for(client, member)
    headers = bearer(tokens["access_token"])
    response = client.post("/api/auth/logout", headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["message"]

    body = assert_error(client.get("/api/auth/me", headers=headers), 401)
    assert "revoked" in body["error"].lower() and body["code"] == "token_revoked"
    (row,) = revoked_rows()
    assert str(row.id) == decode_token(tokens["access_token"])["fam"]
    assert row.user_id == member.id

    # The refresh token of the same sign-in ends with it.
    body = assert_error(client.post("/api/auth/refresh", headers=bearer(tokens["refresh_token"])), 401)
    assert body["code"] == "token_revoked"


def test_logout_is_per_token(client, member):
    first = tokens_for(client, member)
    second = tokens_for(client, member)
    assert client.post("/api/auth/logout", headers=bearer(first["access_token"])).status_code == 200
    assert_error(client.get("/api/auth/me", headers=bearer(first["access_token"])), 401)
    assert client.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 200


def test_logout_with_the_refresh_token_of_another_sign_in_ends_both(client, member):
    tokens = tokens_for(client, member)
    other = tokens_for(client, member)
    response = client.post(
        "/api/auth/logout",
        json={"refresh_token": other["refresh_token"]},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 200, response.json
    assert (
        "revoked"
        in assert_error(client.get("/api/auth/me", headers=bearer(tokens["access_token"])), 401)["error"].lower()
    )
    body = assert_error(client.post("/api/auth/refresh", headers=bearer(other["refresh_token"])), 401)
    assert "revoked" in body["error"].lower()
    assert_error(client.get("/api/auth/me", headers=bearer(other["access_token"])), 401)
    assert len(revoked_rows()) == 2


def test_logout_twice_with_the_same_token_is_401(client, member):
    headers = bearer(tokens_for(client, member)["access_token"])
    assert client.post("/api/auth/logout", headers=headers).status_code == 200
    assert_error(client.post("/api/auth/logout", headers=headers), 401)
    assert len(revoked_rows()) == 1


def test_logout_needs_a_token(client):
    assert_error(client.post("/api/auth/logout"), 401)


def test_logout_with_a_refresh_token_as_bearer_is_401(client, member):
    tokens = tokens_for(client, member)
    assert_error(client.post("/api/auth/logout", headers=bearer(tokens["refresh_token"])), 401)
    assert revoked_rows() == []


@pytest.mark.parametrize("which", ["garbage", "access token", "someone else's"])
def test_logout_with_a_bad_refresh_token_is_400_and_revokes_nothing(client, make_user, which):
    member, other = make_user(), make_user()
    tokens = tokens_for(client, member)
    other_tokens = tokens_for(client, other)
    refresh_token = {
        "garbage": "not.a.token",
        "access token": tokens["access_token"],
        "someone else's": other_tokens["refresh_token"],
    }[which]
    response = client.post(
        "/api/auth/logout",
        json={"refresh_token": refresh_token},
        headers=bearer(tokens["access_token"]),
    )
    assert_error(response, 400, "refresh_token")
    # The failed request changed nothing: every token still works.
    assert client.get("/api/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    assert client.post("/api/auth/refresh", headers=bearer(other_tokens["refresh_token"])).status_code == 200
    assert revoked_rows() == []


def test_logout_rejects_unknown_fields(client, member):
    headers = bearer(tokens_for(client, member)["access_token"])
    assert_error(client.post("/api/auth/logout", json={"everywhere": True}, headers=headers), 400, "everywhere")
    assert client.get("/api/auth/me", headers=headers).status_code == 200


def test_me_without_a_token_is_401(client):
    assert_error(client.get("/api/auth/me"), 401)


def test_token_of_a_deleted_user_is_401(client, member, auth_headers):
    headers = auth_headers(member)
    db.session.execute(sa.delete(User).where(User.id == member.id))
    db.session.commit()
    assert_error(client.get("/api/auth/me", headers=headers), 401)
