"""The admin directory: `GET /api/users` with inactive accounts and filters (issue 7, item 10)."""

import pytest

from finstack.users import service as users


@pytest.fixture
def people(make_user):
    active_it = make_user(department="IT")
    active_sales = make_user(role="manager", department="Sales")
    gone_it = make_user(department="IT")
    users.set_active(gone_it, False)
    return {"active_it": active_it, "active_sales": active_sales, "gone_it": gone_it}


def listed(client, headers, **query):
    response = client.get("/api/users", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["items"]}


def ids(*users_):
    return {str(user.id) for user in users_}


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admins_and_managers_list_inactive_accounts_too(role, client, make_user, auth_headers, people):
    viewer = make_user(role=role)
    headers = auth_headers(viewer)
    everyone = ids(viewer, *people.values())
    assert listed(client, headers, include_inactive="true") == everyone
    assert listed(client, headers) == everyone - ids(people["gone_it"])
    assert listed(client, headers, is_active="false") == ids(people["gone_it"])
    in_it = ids(people["active_it"], people["gone_it"])
    assert listed(client, headers, include_inactive="true", department="IT") == in_it
    assert listed(client, headers, include_inactive="true", role="manager", department="Sales") == ids(
        people["active_sales"]
    )


def test_members_keep_the_active_directory(client, member, auth_headers, people):
    headers = auth_headers(member)
    assert listed(client, headers) == ids(member, people["active_it"], people["active_sales"])
    assert listed(client, headers, department="IT") == ids(people["active_it"])
    for query in ({"include_inactive": "true"}, {"is_active": "false"}):
        response = client.get("/api/users", query_string=query, headers=headers)
        assert response.status_code == 403
        assert response.get_json()["code"] == "forbidden"
