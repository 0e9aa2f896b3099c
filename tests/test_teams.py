"""Teams: who creates, reads and changes them, their members, and the last-manager rule."""

import threading
import uuid

import pytest
import requests
import sqlalchemy as sa

from finstack.audit.models import AuditLog
from finstack.extensions import db
from finstack.teams.models import TeamMember


@pytest.fixture
def team(client, auth_headers, manager, make_user):
    """A team the global manager created (its first manager) with a team manager and a team member added."""
    response = client.post("/api/teams", json={"name": "Tax", "description": "Tax desk"}, headers=auth_headers(manager))
    assert response.status_code == 201, response.json
    team = response.json
    team["manager"] = make_user()
    team["member"] = make_user()
    for user, role in ((team["manager"], "manager"), (team["member"], "member")):
        added = client.post(
            f"/api/teams/{team['id']}/members",
            json={"user_id": str(user.id), "role": role},
            headers=auth_headers(manager),
        )
        assert added.status_code == 201, added.json
    return team


def assert_error(response, status, code):
    assert response.status_code == status, response.json
    assert set(response.json) == {"error", "code", "details"}
    assert response.json["code"] == code


def test_create_team_by_manager_makes_creator_its_manager(client, auth_headers, manager):
    response = client.post("/api/teams", json={"name": "  Audit "}, headers=auth_headers(manager))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["name"] == "Audit"
    assert body["description"] is None
    assert body["member_count"] == 1
    assert body["created_by"] == str(manager.id)
    members = client.get(f"/api/teams/{body['id']}/members", headers=auth_headers(manager)).json
    assert [(m["user_id"], m["role"]) for m in members["items"]] == [(str(manager.id), "manager")]
    assert db.session.scalar(sa.select(AuditLog.action).where(AuditLog.entity_id == uuid.UUID(body["id"])))


@pytest.mark.parametrize("role, status", [("admin", 201), ("manager", 201), ("member", 403)])
def test_who_creates_teams(client, auth_headers, make_user, role, status):
    response = client.post("/api/teams", json={"name": "Ops"}, headers=auth_headers(make_user(role=role)))
    assert response.status_code == status, response.json


def test_create_refuses_unknown_and_blank_fields(client, auth_headers, manager):
    response = client.post("/api/teams", json={"name": "  ", "colour": "red"}, headers=auth_headers(manager))
    assert_error(response, 400, "validation_failed")
    assert set(response.json["details"]) == {"name", "colour"}


def test_list_shows_my_teams_and_admins_see_all(client, auth_headers, team, make_user, admin):
    outsider = make_user()
    other = client.post("/api/teams", json={"name": "Other"}, headers=auth_headers(admin)).json
    mine = client.get("/api/teams", headers=auth_headers(team["member"])).json
    assert [item["id"] for item in mine["items"]] == [team["id"]]
    assert mine["pagination"] == {
        "page": 1, "per_page": 20, "total": 1, "pages": 1, "total_exact": True, "next_cursor": None
    }
    assert mine["items"][0]["member_count"] == 3
    assert client.get("/api/teams", headers=auth_headers(outsider)).json["items"] == []
    everything = client.get("/api/teams?all=true", headers=auth_headers(admin)).json
    assert [item["id"] for item in everything["items"]] == [other["id"], team["id"]]
    assert_error(client.get("/api/teams?all=true", headers=auth_headers(team["manager"])), 403, "forbidden")


def test_read_team(client, auth_headers, team, make_user, admin, manager):
    for user in (team["member"], team["manager"], admin):
        response = client.get(f"/api/teams/{team['id']}", headers=auth_headers(user))
        assert response.status_code == 200, response.json
        assert response.json["name"] == "Tax"
    outsider = make_user(role="manager")
    assert_error(client.get(f"/api/teams/{team['id']}", headers=auth_headers(outsider)), 403, "forbidden")
    assert_error(client.get(f"/api/teams/{team['id']}/members", headers=auth_headers(outsider)), 403, "forbidden")
    missing = "00000000-0000-0000-0000-000000000000"
    assert_error(client.get(f"/api/teams/{missing}", headers=auth_headers(admin)), 404, "not_found")


@pytest.mark.parametrize("actor, status", [("manager", 200), ("admin", 200), ("member", 403), ("global", 403)])
def test_update_team(client, auth_headers, team, admin, make_user, actor, status):
    user = {"manager": team["manager"], "member": team["member"], "admin": admin, "global": make_user(role="manager")}
    response = client.put(f"/api/teams/{team['id']}", json={"name": "Tax & VAT"}, headers=auth_headers(user[actor]))
    assert response.status_code == status, response.json
    expected = "Tax & VAT" if status == 200 else "Tax"
    assert client.get(f"/api/teams/{team['id']}", headers=auth_headers(admin)).json["name"] == expected


@pytest.mark.parametrize("actor, status", [("manager", 204), ("admin", 204), ("member", 403)])
def test_delete_team(client, auth_headers, team, admin, actor, status):
    user = {"manager": team["manager"], "member": team["member"], "admin": admin}[actor]
    response = client.delete(f"/api/teams/{team['id']}", headers=auth_headers(user))
    assert response.status_code == status
    remaining = db.session.scalar(sa.select(sa.func.count()).select_from(TeamMember))
    assert remaining == (0 if status == 204 else 3)


def test_members_list_is_an_envelope_managers_first(client, auth_headers, team, manager):
    body = client.get(f"/api/teams/{team['id']}/members?per_page=2", headers=auth_headers(team["member"])).json
    assert body["pagination"]["total"] == 3
    assert [m["role"] for m in body["items"]] == ["manager", "manager"]
    assert set(body["items"][0]) == {"user_id", "user", "role", "joined_at"}


@pytest.mark.parametrize("actor, status", [("manager", 201), ("admin", 201), ("member", 403)])
def test_add_member(client, auth_headers, team, admin, make_user, actor, status):
    user = {"manager": team["manager"], "member": team["member"], "admin": admin}[actor]
    newcomer = make_user()
    response = client.post(
        f"/api/teams/{team['id']}/members", json={"user_id": str(newcomer.id)}, headers=auth_headers(user)
    )
    assert response.status_code == status, response.json
    if status == 201:
        assert response.json["role"] == "member"
        assert response.json["user"]["username"] == newcomer.username


def test_add_member_refusals(client, auth_headers, team, make_user):
    headers = auth_headers(team["manager"])
    url = f"/api/teams/{team['id']}/members"
    assert_error(client.post(url, json={"user_id": str(team["member"].id)}, headers=headers), 409, "conflict")
    missing = "00000000-0000-0000-0000-000000000000"
    assert_error(client.post(url, json={"user_id": missing}, headers=headers), 400, "validation_failed")
    newcomer = make_user()
    bad_role = client.post(url, json={"user_id": str(newcomer.id), "role": "owner"}, headers=headers)
    assert_error(bad_role, 400, "validation_failed")


def test_change_role_and_last_manager_rule(client, auth_headers, team, manager):
    headers = auth_headers(team["manager"])
    url = f"/api/teams/{team['id']}/members"
    promoted = client.patch(f"{url}/{team['member'].id}", json={"role": "manager"}, headers=headers)
    assert promoted.status_code == 200 and promoted.json["role"] == "manager"
    # Three managers: two may go; the last one can neither be demoted nor leave.
    assert client.delete(f"{url}/{manager.id}", headers=headers).status_code == 204
    assert client.patch(f"{url}/{team['member'].id}", json={"role": "member"}, headers=headers).status_code == 200
    assert_error(client.patch(f"{url}/{team['manager'].id}", json={"role": "member"}, headers=headers), 409, "conflict")
    assert_error(client.delete(f"{url}/{team['manager'].id}", headers=headers), 409, "conflict")
    roles = dict(db.session.execute(sa.select(TeamMember.user_id, TeamMember.role)).all())
    assert roles == {team["manager"].id: "manager", team["member"].id: "member"}


def test_member_cannot_change_others_but_may_leave(client, auth_headers, team):
    headers = auth_headers(team["member"])
    url = f"/api/teams/{team['id']}/members"
    assert_error(
        client.patch(f"{url}/{team['member'].id}", json={"role": "manager"}, headers=headers), 403, "forbidden"
    )
    assert_error(client.delete(f"{url}/{team['manager'].id}", headers=headers), 403, "forbidden")
    assert client.delete(f"{url}/{team['member'].id}", headers=headers).status_code == 204
    assert_error(client.get(f"/api/teams/{team['id']}", headers=headers), 403, "forbidden")


def test_unknown_member_is_404(client, auth_headers, team, make_user):
    stranger = make_user()
    url = f"/api/teams/{team['id']}/members/{stranger.id}"
    assert_error(client.patch(url, json={"role": "manager"}, headers=auth_headers(team["manager"])), 404, "not_found")
    assert_error(client.delete(url, headers=auth_headers(team["manager"])), 404, "not_found")


def test_writes_are_audited(client, auth_headers, team, admin):
    client.put(f"/api/teams/{team['id']}", json={"description": "Taxes"}, headers=auth_headers(admin))
    client.patch(
        f"/api/teams/{team['id']}/members/{team['member'].id}", json={"role": "manager"}, headers=auth_headers(admin)
    )
    client.delete(f"/api/teams/{team['id']}/members/{team['member'].id}", headers=auth_headers(admin))
    client.delete(f"/api/teams/{team['id']}", headers=auth_headers(admin))
    actions = db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_type == "team")).all()
    assert sorted(actions) == sorted(
        [
            "team.create",
            "team.member_add",
            "team.member_add",
            "team.update",
            "team.member_update",
            "team.member_remove",
            "team.delete",
        ]
    )



def at_once(*calls):
    """Run the zero-argument `calls` in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("attempt", range(5))
def test_two_managers_demoting_each_other_at_once_leave_one_manager(
    client, auth_headers, manager, make_user, live_server, attempt
):
    """The last-manager rule holds under concurrency: each of a team's two managers demotes the other over HTTP at
    the same instant; exactly one demotion wins and the team keeps one manager. The other is refused as the last
    manager (409) or, when the winner committed before its permission check, as no longer a manager (403)."""
    team_id = client.post("/api/teams", json={"name": "Race"}, headers=auth_headers(manager)).json["id"]
    other = make_user()
    added = client.post(
        f"/api/teams/{team_id}/members",
        json={"user_id": str(other.id), "role": "manager"},
        headers=auth_headers(manager),
    )
    assert added.status_code == 201, added.json

    def demoting(actor, target):
        headers = auth_headers(actor)
        url = f"{live_server.url}/api/teams/{team_id}/members/{target.id}"
        return lambda: requests.patch(url, json={"role": "member"}, headers=headers, timeout=30)

    answers = at_once(demoting(manager, other), demoting(other, manager))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses in ([200, 403], [200, 409]), [answer.text for answer in answers]
    managers = db.session.scalar(
        sa.select(sa.func.count()).where(TeamMember.team_id == uuid.UUID(team_id), TeamMember.role == "manager")
    )
    assert managers == 1
