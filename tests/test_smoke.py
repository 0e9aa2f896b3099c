def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "healthy" and response.json["database"] == "ok"


def test_login_create_list(client, member):
    login = client.post("/api/auth/login", json={"username": member.username, "password": "correct-horse-battery"})
    assert login.status_code == 200, login.json
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    created = client.post(
        "/api/tasks",
        json={"entity_name": "Acme 100%", "task_type": "Call", "task_time": "2030-01-01T10:00:00+02:00"},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    assert created.json["task_time"] == "2030-01-01T08:00:00+00:00"
    listed = client.get("/api/tasks?entity_name=100%25", headers=headers)
    assert listed.json["pagination"]["total"] == 1
    assert client.get("/api/tasks?entity_name=1_0", headers=headers).json["pagination"]["total"] == 0
    dash = client.get("/api/analytics/dashboard", headers=headers)
    assert dash.json["summary"]["total_tasks"] == 1, dash.json
