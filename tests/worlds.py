"""Scenes several test modules share, as fixtures (a module imports the one it uses: `world = worlds.world`).

`world`: a team with a private project, and a person per role. `admin` (created the team, so its manager too);
`manager` (global manager, created the project, so its explicit project manager); `lead` and `staff` (team manager and
team member of the project's team: project manager and member through it); `member` and `viewer` (explicit project
member and viewer); `outsider` (a member in neither). Also `url` (the project's) and `board` (its kanban board).
"""

import pytest


@pytest.fixture
def world(client, auth_headers, make_user, admin, manager):
    people = {
        "admin": admin,
        "manager": manager,
        "lead": make_user(),
        "staff": make_user(),
        "member": make_user(),
        "viewer": make_user(),
        "outsider": make_user(),
    }
    team = client.post("/api/teams", json={"name": "Audit"}, headers=auth_headers(admin)).json
    for name, role in (("lead", "manager"), ("staff", "member")):
        response = client.post(
            f"/api/teams/{team['id']}/members",
            json={"user_id": str(people[name].id), "role": role},
            headers=auth_headers(admin),
        )
        assert response.status_code == 201, response.json
    project = client.post(
        "/api/projects",
        json={"name": "Year-end close", "key": "yec", "visibility": "private", "team_id": team["id"]},
        headers=auth_headers(manager),
    )
    assert project.status_code == 201, project.json
    for name, role in (("member", "member"), ("viewer", "viewer")):
        response = client.post(
            f"/api/projects/{project.json['id']}/members",
            json={"user_id": str(people[name].id), "role": role},
            headers=auth_headers(manager),
        )
        assert response.status_code == 201, response.json
    url = f"/api/projects/{project.json['id']}"
    return {"people": people, "team": team, "project": project.json, "url": url, "board": f"{url}/board"}
