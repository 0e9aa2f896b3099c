"""Sessions end when credentials change, and refresh tokens rotate with reuse detection (issue 7, items 1 and 2).

Through HTTP (the test client, and a live server for concurrent refreshes) and real Socket.IO clients.
"""

import threading
import time

import jwt as pyjwt
import pytest
import requests
import sqlalchemy as sa
from conftest import PASSWORD
from flask_jwt_extended import decode_token
from socketio.exceptions import ConnectionError as SocketConnectionError

from finstack.audit.models import AuditLog
from finstack.auth.models import TokenFamily
from finstack.extensions import db

NEW_PASSWORD = "a-brand-new-secret"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, user, password=PASSWORD):
    response = client.post("/api/auth/login", json={"username": user.username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


def status_and_code(response):
    return response.status_code, (response.get_json() or {}).get("code")


def me(client, tokens):
    return status_and_code(client.get("/api/auth/me", headers=bearer(tokens["access_token"])))


def refresh(client, refresh_token):
    return client.post("/api/auth/refresh", headers=bearer(refresh_token))


def actions(action):
    return db.session.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


REVOKED = (401, "token_revoked")


# -- 1. credentials change ----------------------------------------------------------------------------------------


def test_password_change_ends_the_other_sessions_and_continues_this_one(client, member):
    here, elsewhere = sign_in(client, member), sign_in(client, member)
    response = client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(here["access_token"]),
    )
    assert response.status_code == 200, response.json
    fresh = response.json
    assert set(fresh) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert fresh["user"]["id"] == str(member.id)

    for old in (here, elsewhere):
        assert me(client, old) == REVOKED
        assert status_and_code(refresh(client, old["refresh_token"])) == REVOKED
    assert me(client, fresh) == (200, None)
    assert refresh(client, fresh["refresh_token"]).status_code == 200
    assert [entry.entity_id for entry in actions("user.password_changed")] == [member.id]


@pytest.mark.parametrize("how", ["api", "cli"])
def test_an_admin_reset_ends_every_session(how, client, runner, admin, member):
    tokens = sign_in(client, member)
    if how == "api":
        admin_tokens = sign_in(client, admin)
        response = client.post(
            f"/api/users/{member.id}/reset-password",
            json={"new_password": NEW_PASSWORD},
            headers=bearer(admin_tokens["access_token"]),
        )
        assert response.status_code == 200, response.json
    else:
        result = runner.invoke(args=["users", "reset-password", member.username, "--password", NEW_PASSWORD])
        assert result.exit_code == 0, result.output
    assert me(client, tokens) == REVOKED
    assert status_and_code(refresh(client, tokens["refresh_token"])) == REVOKED
    sign_in(client, member, NEW_PASSWORD)


def test_reactivation_does_not_revive_tokens_issued_before(client, admin, member):
    tokens = sign_in(client, member)
    admin_headers = bearer(sign_in(client, admin)["access_token"])
    assert client.post(f"/api/users/{member.id}/deactivate", headers=admin_headers).status_code == 200
    assert me(client, tokens) == (401, "user_inactive")
    assert client.post(f"/api/users/{member.id}/activate", headers=admin_headers).status_code == 200

    assert me(client, tokens) == REVOKED
    assert status_and_code(refresh(client, tokens["refresh_token"])) == REVOKED
    assert me(client, sign_in(client, member)) == (200, None)


def test_a_request_checks_its_token_with_one_query(app, client, member):
    tokens = sign_in(client, member)
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/api/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements


def test_the_task_list_checks_its_session_like_every_request(client, admin, member):
    """The list reads its user as a row (`auth_required(user_row=True)`): the same one check, the same refusals."""
    tokens = sign_in(client, member)
    admin_headers = bearer(sign_in(client, admin)["access_token"])

    def listed():
        return status_and_code(client.get("/api/tasks", headers=bearer(tokens["access_token"])))

    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert listed() == (200, None)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert len([statement for statement in statements if "token_families" in statement]) == 1, statements
    assert client.post(f"/api/users/{member.id}/deactivate", headers=admin_headers).status_code == 200
    assert listed() == (401, "user_inactive")
    assert client.post(f"/api/users/{member.id}/activate", headers=admin_headers).status_code == 200
    assert listed() == REVOKED


def me_in_a_request_of_its_own(app, client, token):
    """`me`, with the request's own `g`, as a server gives it (the test's app context would otherwise lend its `g`
    to every request, and with it the token the first one decoded)."""
    with app.app_context():
        return me(client, {"access_token": token})


def test_a_token_verified_before_is_still_refused_once_it_expires(app, client, member):
    """A token verified once is not verified again in this process, but its expiry is checked on every request."""
    claims = decode_token(sign_in(client, member)["access_token"])
    expires = int(time.time()) + 2
    token = pyjwt.encode({**claims, "exp": expires}, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert me_in_a_request_of_its_own(app, client, token) == (200, None)
    time.sleep(max(0, expires - time.time()) + 0.05)
    assert me_in_a_request_of_its_own(app, client, token) == (401, "token_expired")


def test_a_token_verified_under_one_key_is_refused_under_another(app, client, member):
    token = sign_in(client, member)["access_token"]
    assert me_in_a_request_of_its_own(app, client, token) == (200, None)
    app.config["JWT_SECRET_KEY"] = app.config["JWT_SECRET_KEY"] + "-rotated"
    assert me_in_a_request_of_its_own(app, client, token) == (401, "token_invalid")


def test_a_password_change_drops_the_users_live_sockets(client, member, live_server, socket_client):
    here = sign_in(client, member)
    sock = socket_client(token=sign_in(client, member)["access_token"])
    response = client.put(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(here["access_token"]),
    )
    assert response.status_code == 200
    assert sock.wait_disconnected(timeout=5)

    # The old token cannot open a new one; the fresh one can.
    refused = socket_client(connect=False)
    with pytest.raises(SocketConnectionError):
        refused.connect(live_server.url, auth={"token": here["access_token"]}, transports=["websocket"])
    assert refused.connect_errors[0]["data"]["code"] == "token_revoked"
    assert socket_client(token=response.json["access_token"]).connected


def test_the_periodic_recheck_drops_a_socket_whose_credentials_changed(client, member, socket_client):
    """A version bump made without any call into the server process (as from another host) is noticed."""
    sock = socket_client(token=sign_in(client, member)["access_token"])
    db.session.execute(sa.text("UPDATE users SET token_version = token_version + 1"))
    db.session.commit()
    assert sock.wait_disconnected(timeout=5)


# -- 2. refresh rotation --------------------------------------------------------------------------------------------


def test_refresh_returns_a_new_pair_and_retires_the_presented_token(client, member):
    tokens = sign_in(client, member)
    response = refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.json
    rotated = response.json
    assert set(rotated) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert rotated["refresh_token"] != tokens["refresh_token"]
    old, new = decode_token(tokens["refresh_token"]), decode_token(rotated["refresh_token"])
    assert new["fam"] == old["fam"] and new["jti"] != old["jti"]
    assert me(client, rotated) == (200, None)
    # And the successor rotates in turn.
    assert refresh(client, rotated["refresh_token"]).status_code == 200


@pytest.fixture
def no_grace(app_config):
    app_config["REFRESH_REUSE_GRACE_SECONDS"] = 0


def test_reusing_a_retired_refresh_token_ends_its_whole_family(no_grace, client, member):
    tokens = sign_in(client, member)
    other_sign_in = sign_in(client, member)
    rotated = refresh(client, tokens["refresh_token"]).json

    stolen = refresh(client, tokens["refresh_token"])
    assert status_and_code(stolen) == REVOKED
    # Every token of that family stops: the rotated pair and the first access token.
    assert me(client, tokens) == REVOKED
    assert me(client, rotated) == REVOKED
    assert status_and_code(refresh(client, rotated["refresh_token"])) == REVOKED
    # Another sign-in of the same user is untouched.
    assert me(client, other_sign_in) == (200, None)

    (entry,) = actions("auth.refresh_reused")
    assert entry.entity_id == member.id
    assert entry.changes["family"] == decode_token(tokens["refresh_token"])["fam"]


def test_a_second_refresh_within_the_grace_window_gets_the_same_successor(client, member):
    tokens = sign_in(client, member)
    first = refresh(client, tokens["refresh_token"])
    second = refresh(client, tokens["refresh_token"])
    assert first.status_code == second.status_code == 200
    assert first.json["refresh_token"] == second.json["refresh_token"]
    assert actions("auth.refresh_reused") == []
    assert refresh(client, second.json["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_agree_on_one_successor(client, member, live_server):
    tokens = sign_in(client, member)
    count = 6
    barrier = threading.Barrier(count)
    answers = [None] * count

    def refresh_over_http(index):
        barrier.wait()
        answers[index] = requests.post(
            f"{live_server.url}/api/auth/refresh", headers=bearer(tokens["refresh_token"]), timeout=30
        )

    threads = [threading.Thread(target=refresh_over_http, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status_code for answer in answers] == [200] * count, [answer.text for answer in answers]
    successors = {answer.json()["refresh_token"] for answer in answers}
    assert len(successors) == 1
    family = db.session.scalar(sa.select(TokenFamily))
    assert family.revoked_at is None
    assert family.current_jti == decode_token(successors.pop())["jti"]
    assert actions("auth.refresh_reused") == []


def test_logout_with_the_refresh_token_ends_its_family(client, member):
    tokens = sign_in(client, member)
    rotated = refresh(client, tokens["refresh_token"]).json
    response = client.post(
        "/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}, headers=bearer(rotated["access_token"])
    )
    assert response.status_code == 200
    assert me(client, tokens) == REVOKED
    assert status_and_code(refresh(client, rotated["refresh_token"])) == REVOKED


def test_a_reused_refresh_token_drops_the_familys_sockets(no_grace, client, member, socket_client):
    tokens = sign_in(client, member)
    rotated = refresh(client, tokens["refresh_token"]).json
    sock = socket_client(token=rotated["access_token"])
    assert status_and_code(refresh(client, tokens["refresh_token"])) == REVOKED
    assert sock.wait_disconnected(timeout=5)


def test_activating_an_active_account_ends_nothing(client, admin, member):
    tokens = sign_in(client, member)
    admin_headers = bearer(sign_in(client, admin)["access_token"])
    assert client.post(f"/api/users/{member.id}/activate", headers=admin_headers).status_code == 200
    assert me(client, tokens) == (200, None)
