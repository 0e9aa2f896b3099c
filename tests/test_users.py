"""The user directory (`GET /api/users`) and your own profile and password (`/api/users/me`)."""

from unittest.mock import ANY

import pytest
from conftest import PASSWORD

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


def login(client, name, password=PASSWORD):
    return client.post("/api/auth/login", json={"username": name, "password": password})


def reload(user):
    db.session.expire_all()
    return db.session.get(User, user.id)


def usernames(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["username"] for item in response.json["items"]}


# --- the directory --------------------------------------------------------------------------------


def test_list_users_answers_the_envelope_of_active_users(client, runner, make_user, auth_headers):
    me = make_user(full_name="Alice Active")
    other = make_user(full_name="Bob Active", role="manager")
    gone = make_user(full_name="Carol Gone")
    assert runner.invoke(args=["users", "deactivate", gone.username]).exit_code == 0

    response = client.get("/api/users", headers=auth_headers(me))
    assert response.status_code == 200, response.json
    assert set(response.json) == {"items", "pagination"}
    assert response.json["pagination"] == {
        "page": 1, "per_page": 20, "total": 2, "pages": 1, "total_exact": True, "next_cursor": None
    }
    items = response.json["items"]
    assert [item["id"] for item in items] == [str(me.id), str(other.id)]  # ordered by full name
    assert all(item["is_active"] for item in items)
    assert all(SECRET_FIELDS.isdisjoint(item) for item in items)
    assert items[1]["role"] == "manager"


def test_list_users_needs_a_token(client, member):
    assert_error(client.get("/api/users"), 401)


def test_list_users_pages_without_gaps_or_repeats(client, make_user, auth_headers):
    people = [make_user(full_name="Same Name") for _ in range(7)]
    headers = auth_headers(people[0])
    seen = []
    for page in (1, 2, 3):
        response = client.get(f"/api/users?page={page}&per_page=3", headers=headers)
        assert response.status_code == 200
        assert response.json["pagination"] == {
            "page": page,
            "per_page": 3,
            "total": 7,
            "pages": 3,
            "total_exact": True,
            "next_cursor": ANY if page < 3 else None,
        }
        seen += [item["id"] for item in response.json["items"]]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {str(person.id) for person in people}

    beyond = client.get("/api/users?page=9&per_page=3", headers=headers)
    assert beyond.status_code == 200
    assert beyond.json["items"] == []
    assert beyond.json["pagination"] == {
        "page": 9, "per_page": 3, "total": 7, "pages": 3, "total_exact": True, "next_cursor": None
    }


def test_list_users_filters_by_role(client, make_user, auth_headers):
    me = make_user()
    boss = make_user(role="manager")
    make_user(role="admin")
    assert usernames(client.get("/api/users?role=manager", headers=auth_headers(me))) == {boss.username}
    assert_error(client.get("/api/users?role=owner", headers=auth_headers(me)), 400, "role")


@pytest.fixture
def directory(make_user):
    """People with names, usernames and e-mails that differ in the characters patterns care about."""
    specs = {
        "ann": ("Ann Percent 100% Sure", "ann@example.com"),
        "ben": ("Ben Hundred 1000 Sure", "ben@example.com"),
        "cat": ("Cat snake_case", "cat@example.com"),
        "dan": ("Dan snakeXcase", "dan@example.com"),
        "eve": ("Eve Regex .* Star", "eve@example.com"),
        "fay": ("Fay Regex ab Star", "fay@example.com"),
        "gus": ("Gus Back\\slash", "gus@example.com"),
        "hal": ("Hal Backslash", "hal@example.com"),
        "ivy": ("Ivy O'Hara", "ivy@example.com"),
        "jon": ('Jon "Quoted"', "jon@example.com"),
        "kim": ("Kim [ab] Bracket", "kim@example.com"),
        "lou": ("Lou a Bracket", "lou@example.com"),
        "max": ("Max Mustermann", "max.power@finance.example.org"),
        "ned": ("Ned Plain", "ned_x@example.com"),
    }
    return {
        username: make_user(username=username, full_name=full_name, email=email)
        for username, (full_name, email) in specs.items()
    }


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("%", {"ann"}),
        ("100%", {"ann"}),
        ("_", {"cat", "ned"}),
        ("e_c", {"cat"}),
        (".*", {"eve"}),
        ("\\", {"gus"}),
        ("k\\s", {"gus"}),
        ("'", {"ivy"}),
        ("o'h", {"ivy"}),
        ('"', {"jon"}),
        ("[ab]", {"kim"}),
        ("[", {"kim"}),
        ("^ann", set()),
        ("sure$", set()),
        ("a|b", set()),
        ("' OR '1'='1", set()),
    ],
)
def test_search_is_a_literal_substring(client, auth_headers, directory, search, expected):
    response = client.get("/api/users", query_string={"search": search}, headers=auth_headers(directory["max"]))
    assert usernames(response) == expected
    assert response.json["pagination"]["total"] == len(expected)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("MUSTERMANN", {"max"}),  # full name
        ("mAx", {"max"}),  # username (and name)
        ("FINANCE.EXAMPLE", {"max"}),  # e-mail
        ("NED_X@", {"ned"}),  # e-mail, with a literal underscore
        ("snake", {"cat", "dan"}),
        ("SURE", {"ann", "ben"}),
        ("nobody-has-this", set()),
    ],
)
def test_search_matches_name_username_or_email_in_any_case(client, auth_headers, directory, search, expected):
    response = client.get("/api/users", query_string={"search": search}, headers=auth_headers(directory["max"]))
    assert usernames(response) == expected


def test_search_skips_deactivated_users(client, runner, auth_headers, directory):
    assert runner.invoke(args=["users", "deactivate", "ann"]).exit_code == 0
    response = client.get("/api/users", query_string={"search": "sure"}, headers=auth_headers(directory["max"]))
    assert usernames(response) == {"ben"}


def test_search_and_role_combine(client, make_user, auth_headers):
    me = make_user(full_name="Zed Finder")
    make_user(full_name="Pat Smith", role="member")
    boss = make_user(full_name="Pat Jones", role="manager")
    response = client.get("/api/users?search=pat&role=manager", headers=auth_headers(me))
    assert usernames(response) == {boss.username}


def test_search_longer_than_100_characters_is_400(client, member, auth_headers):
    assert_error(client.get("/api/users", query_string={"search": "x" * 101}, headers=auth_headers(member)), 400)
    assert client.get("/api/users", query_string={"search": "x" * 100}, headers=auth_headers(member)).status_code == 200


# --- my profile -----------------------------------------------------------------------------------


def test_get_me(client, member, auth_headers):
    response = client.get("/api/users/me", headers=auth_headers(member))
    assert response.status_code == 200
    assert response.json["id"] == str(member.id)
    assert response.json["username"] == member.username
    assert response.json["role"] == "member"
    assert SECRET_FIELDS.isdisjoint(response.json)


def test_me_needs_a_token(client):
    assert_error(client.get("/api/users/me"), 401)
    assert_error(client.put("/api/users/me", json={"full_name": "X"}), 401)
    assert_error(client.put("/api/users/me/password", json={"current_password": "a", "new_password": "b" * 8}), 401)


def test_update_me_changes_name_email_and_phone(client, member, auth_headers):
    old_email = member.email
    response = client.put(
        "/api/users/me",
        json={"full_name": "  Renamed Person ", "email": "Renamed@Example.COM", "phone": "+44 (20) 7946-0000"},
        headers=auth_headers(member),
    )
    assert response.status_code == 200, response.json
    assert response.json["full_name"] == "Renamed Person"
    assert response.json["email"] == "renamed@example.com"
    assert response.json["phone"] == "+44 (20) 7946-0000"
    assert SECRET_FIELDS.isdisjoint(response.json)

    stored = reload(member)
    assert (stored.full_name, stored.email, stored.phone) == (
        "Renamed Person",
        "renamed@example.com",
        "+44 (20) 7946-0000",
    )
    assert client.get("/api/users/me", headers=auth_headers(member)).json["email"] == "renamed@example.com"
    # The new e-mail signs in, the old one no longer does.
    assert login(client, "RENAMED@example.com").status_code == 200
    assert_error(login(client, old_email), 401)


def test_update_me_changes_only_what_is_given(client, member, auth_headers):
    before = (member.full_name, member.email)
    response = client.put("/api/users/me", json={"phone": "555 0100"}, headers=auth_headers(member))
    assert response.status_code == 200
    stored = reload(member)
    assert (stored.full_name, stored.email, stored.phone) == (*before, "555 0100")

    assert client.put("/api/users/me", json={"phone": None}, headers=auth_headers(member)).status_code == 200
    assert reload(member).phone is None


def test_update_me_keeping_my_own_email_in_another_case_is_fine(client, member, auth_headers):
    response = client.put("/api/users/me", json={"email": member.email.upper()}, headers=auth_headers(member))
    assert response.status_code == 200, response.json
    assert reload(member).email == member.email.lower()


def test_update_me_to_a_taken_email_is_409(client, make_user, auth_headers):
    me = make_user()
    other = make_user(email="taken@example.com")
    response = client.put("/api/users/me", json={"email": "TAKEN@example.com"}, headers=auth_headers(me))
    assert_error(response, 409, "email")
    assert reload(me).email != "taken@example.com"
    assert reload(other).email == "taken@example.com"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("is_active", False),
        ("username", "renamed"),
        ("password", "a-new-password"),
        ("password_hash", "x"),
        ("department", "finance"),
        ("id", "00000000-0000-0000-0000-000000000000"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_update_me_refuses_unknown_fields_naming_them(client, member, auth_headers, field, value):
    before = {column: getattr(member, column) for column in ("role", "is_active", "username", "password_hash")}
    response = client.put(
        "/api/users/me",
        json={"full_name": "Sneaky", field: value},
        headers=auth_headers(member),
    )
    body = assert_error(response, 400, field)
    assert set(body["details"]) == {field}
    stored = reload(member)
    assert {column: getattr(stored, column) for column in before} == before
    assert stored.full_name != "Sneaky"


def test_member_cannot_promote_themselves(client, member, auth_headers):
    assert_error(client.put("/api/users/me", json={"role": "admin"}, headers=auth_headers(member)), 400, "role")
    assert reload(member).role == "member"
    assert client.get("/api/users/me", headers=auth_headers(member)).json["role"] == "member"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", None),
        ("email", "x" * 250 + "@example.com"),
        ("full_name", ""),
        ("full_name", "   "),
        ("full_name", None),
        ("full_name", "x" * 121),
        ("full_name", 42),
        ("phone", "phone me"),
        ("phone", 12345),
    ],
)
def test_update_me_validation_errors(client, member, auth_headers, field, value):
    before = (member.full_name, member.email, member.phone)
    response = client.put("/api/users/me", json={field: value}, headers=auth_headers(member))
    assert_error(response, 400, field)
    stored = reload(member)
    assert (stored.full_name, stored.email, stored.phone) == before


# --- my password ----------------------------------------------------------------------------------


def change_password(client, headers, current, new):
    return client.put(
        "/api/users/me/password", json={"current_password": current, "new_password": new}, headers=headers
    )


def test_change_password(client, member, auth_headers):
    response = change_password(client, auth_headers(member), PASSWORD, "brand-new-secret")
    assert response.status_code == 200, response.json
    assert {"access_token", "refresh_token", "token_type", "expires_in", "user"} <= set(response.json)
    assert_error(login(client, member.username), 401)
    assert login(client, member.username, "brand-new-secret").status_code == 200
    assert reload(member).check_password("brand-new-secret")


def test_change_password_with_a_wrong_current_password_is_400(client, member, auth_headers):
    response = change_password(client, auth_headers(member), "not-my-password", "brand-new-secret")
    body = assert_error(response, 400, "current_password")
    assert "new_password" not in body["details"]
    assert login(client, member.username).status_code == 200
    assert_error(login(client, member.username, "brand-new-secret"), 401)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "x" * 129}, "new_password"),
        ({"current_password": PASSWORD}, "new_password"),
        ({"new_password": "brand-new-secret"}, "current_password"),
        ({"current_password": PASSWORD, "new_password": 12345678}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "brand-new-secret", "confirm": "x"}, "confirm"),
    ],
)
def test_change_password_validation_errors(client, member, auth_headers, payload, field):
    assert_error(client.put("/api/users/me/password", json=payload, headers=auth_headers(member)), 400, field)
    assert login(client, member.username).status_code == 200


def test_changed_password_applies_to_login_by_email_too(client, member, auth_headers):
    assert change_password(client, auth_headers(member), PASSWORD, "brand-new-secret").status_code == 200
    assert login(client, member.email.upper(), "brand-new-secret").status_code == 200
    assert_error(login(client, member.email), 401)
