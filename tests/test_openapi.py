"""The OpenAPI document and Swagger UI: every API route documented, with its auth, request and response schemas."""

import re
import uuid

import pytest

SPEC_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
UNDOCUMENTED = {SPEC_URL, DOCS_URL}
PUBLIC = {("post", "/api/auth/register"), ("post", "/api/auth/login"), ("get", "/api/health")}
WRITES = {"POST", "PUT", "PATCH"}
BODY_LOCATIONS = {"json", "form", "files"}
TASK_WRITES = {
    ("post", "/api/tasks"),
    ("put", "/api/tasks/{task_id}"),
    ("patch", "/api/tasks/{task_id}/status"),
    ("post", "/api/tasks/bulk-status"),
}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def spec(client):
    response = client.get(SPEC_URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def openapi_path(rule):
    """Flask's `/api/tasks/<uuid:task_id>` is OpenAPI's `/api/tasks/{task_id}`."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def api_routes(app):
    """Every (method, path) the app serves under /api, in OpenAPI spelling."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api") or rule.rule in UNDOCUMENTED:
            continue
        for method in rule.methods - AUTOMATIC_METHODS:
            routes.add((method.lower(), openapi_path(rule.rule)))
    return routes


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def resolve(spec, node):
    """Follow `$ref`s inside the document; fails when one points nowhere."""
    while "$ref" in node:
        assert node["$ref"].startswith("#/"), node["$ref"]
        target = spec
        for part in node["$ref"][2:].split("/"):
            assert part in target, f"dangling reference {node['$ref']}"
            target = target[part]
        node = target
    return node


def json_schema(spec, holder):
    """The resolved JSON schema of a request body or response, or None when it has none."""
    holder = resolve(spec, holder)
    schema = holder.get("content", {}).get("application/json", {}).get("schema")
    return None if schema is None else resolve(spec, schema)


def test_spec_is_openapi_3_with_bearer_scheme(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    assert spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_spec_needs_no_token(client):
    assert client.get(SPEC_URL).status_code == 200


def test_app_has_the_routes_this_suite_relies_on(app):
    """Guards the comparison below against an empty or misread url_map."""
    routes = api_routes(app)
    assert {
        ("post", "/api/tasks"),
        ("get", "/api/tasks"),
        ("get", "/api/tasks/{task_id}"),
        ("put", "/api/tasks/{task_id}"),
        ("delete", "/api/tasks/{task_id}"),
        ("patch", "/api/tasks/{task_id}/status"),
        ("post", "/api/tasks/bulk-status"),
        ("get", "/api/analytics/dashboard"),
        ("post", "/api/auth/login"),
        ("get", "/api/health"),
    } <= routes


def test_every_api_route_is_documented(app, spec):
    documented = {(method, path) for method, path, _ in operations(spec)}
    missing = api_routes(app) - documented
    assert not missing, f"routes missing from {SPEC_URL}: {sorted(missing)}"


def test_nothing_documented_that_the_app_does_not_serve(app, spec):
    documented = {(method, path) for method, path, _ in operations(spec)}
    extra = documented - api_routes(app)
    assert not extra, f"documented but not served: {sorted(extra)}"


def test_docs_pages_are_not_listed_as_endpoints(spec):
    assert not UNDOCUMENTED & set(spec["paths"])


def test_security_is_documented_on_every_protected_endpoint(spec):
    for method, path, operation in operations(spec):
        if (method, path) in PUBLIC:
            assert not operation.get("security"), f"{method} {path} is public"
        else:
            assert operation.get("security") == [{"bearerAuth": []}], f"{method} {path} lacks bearerAuth"
    assert not spec.get("security"), "no global requirement may hide a missing per-endpoint one"


def test_documented_security_matches_behaviour(app, spec):
    """Every operation documented with bearerAuth answers 401 without a token; the public ones do not."""
    client = app.test_client()
    for method, path, operation in operations(spec):
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = client.open(url, method=method.upper(), json={})
        if operation.get("security"):
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a token"
        else:
            assert response.status_code != 401, f"{method} {path} wants a token but does not document it"


def body_schema(spec, operation):
    """The resolved schema of an operation's request body, whatever its media type, or None."""
    content = operation.get("requestBody", {}).get("content", {})
    schemas = [media["schema"] for media in content.values() if "schema" in media]
    return resolve(spec, schemas[0]) if schemas else None


def test_writes_document_their_request_body(app, spec):
    """A POST/PUT/PATCH whose view parses a body documents its schema; one that parses none is a bodiless action."""
    bodiless = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api") or rule.rule in UNDOCUMENTED:
            continue
        declared = getattr(app.view_functions[rule.endpoint], "_apidoc", {}).get("arguments", {})
        reads_body = any(parameter["in"] in BODY_LOCATIONS for parameter in declared.get("parameters", []))
        for method in rule.methods & WRITES:
            path = openapi_path(rule.rule)
            operation = spec["paths"][path][method.lower()]
            if reads_body:
                schema = body_schema(spec, operation)
                assert schema is not None, f"{method} {path} reads a body but documents no schema for it"
                assert schema.get("properties"), f"{method} {path} body schema has no properties"
            else:
                assert "requestBody" not in operation, f"{method} {path} documents a body it never reads"
                bodiless.add((method.lower(), path))
    assert ("post", "/api/auth/refresh") in bodiless, "the refresh token travels as the bearer token"
    assert not bodiless & TASK_WRITES


def test_task_writes_take_json(spec):
    for method, path in TASK_WRITES:
        operation = spec["paths"][path][method]
        assert operation["requestBody"]["required"] is True
        assert json_schema(spec, operation["requestBody"])["properties"], (method, path)


def test_every_endpoint_documents_its_success_response(spec):
    """One 2xx per operation: 204 carries nothing; JSON bodies have object schemas; files a typed (binary) schema."""
    for method, path, operation in operations(spec):
        successes = {code: response for code, response in operation["responses"].items() if code.startswith("2")}
        assert len(successes) == 1, f"{method} {path} documents {sorted(successes)}"
        ((code, response),) = successes.items()
        content = resolve(spec, response).get("content", {})
        if code == "204":
            assert not content, f"{method} {path}: 204 carries no body"
            continue
        assert content, f"{method} {path}: {code} documents no body"
        for media_type, media in content.items():
            assert "schema" in media, f"{method} {path}: {code} {media_type} has no schema"
            schema = resolve(spec, media["schema"])
            if media_type == "application/json":
                assert schema.get("properties"), f"{method} {path}: {code} JSON schema has no properties"
            else:
                assert schema.get("type"), f"{method} {path}: {code} {media_type} schema has no type"


def test_every_endpoint_documents_the_error_shape(spec):
    for method, path, operation in operations(spec):
        schema = json_schema(spec, operation["responses"]["default"])
        assert schema is not None, f"{method} {path} has no default error response"
        assert set(schema["properties"]) == {"error", "code", "details"}
        for code, response in operation["responses"].items():
            if code.startswith("4"):
                error_fields = set(json_schema(spec, response)["properties"])
                assert error_fields == {"error", "code", "details"}, (method, path, code)


def test_every_reference_resolves(spec):
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(spec, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)


def test_task_documents(spec):
    schemas = spec["components"]["schemas"]
    tasks = spec["paths"]["/api/tasks"]
    created = json_schema(spec, tasks["post"]["responses"]["201"])
    assert set(created["properties"]) == {
        "id",
        "entity_name",
        "task_type",
        "task_time",
        "contact_person_id",
        "contact_person",
        "project_id",
        "note",
        "status",
        "priority",
        "created_by",
        "creator",
        "date_created",
        "updated_at",
        "closed_at",
        "version",
        "is_overdue",
    }
    create_in = json_schema(spec, tasks["post"]["requestBody"])
    assert set(create_in["required"]) == {"entity_name", "task_type", "task_time"}
    assert create_in["properties"]["entity_name"]["maxLength"] == 200
    assert create_in["properties"]["status"]["enum"] == ["open", "in_progress", "closed", "cancelled"]
    assert create_in["properties"]["priority"]["enum"] == ["low", "medium", "high"]
    assert create_in["properties"]["priority"]["default"] == "medium"

    page = json_schema(spec, tasks["get"]["responses"]["200"])
    assert set(page["properties"]) == {"items", "pagination"}
    assert set(resolve(spec, page["properties"]["pagination"])["required"]) == {"page", "per_page", "total", "pages"}
    assert resolve(spec, page["properties"]["items"]["items"]) == created

    bulk = spec["paths"]["/api/tasks/bulk-status"]["post"]
    assert set(json_schema(spec, bulk["responses"]["200"])["properties"]) == {"updated", "not_found", "forbidden"}
    assert json_schema(spec, bulk["requestBody"])["properties"]["task_ids"]["maxItems"] == 500
    assert "TaskOut" in schemas


def test_task_list_documents_every_query_parameter(spec):
    parameters = {parameter["name"]: parameter for parameter in spec["paths"]["/api/tasks"]["get"]["parameters"]}
    assert set(parameters) == {
        "page",
        "per_page",
        "status",
        "priority",
        "task_type",
        "entity_name",
        "contact_person_id",
        "created_by",
        "date_from",
        "date_to",
        "overdue",
        "project_id",
        "team_id",
        "no_project",
        "sort_by",
        "sort_order",
    }
    assert all(parameter["in"] == "query" for parameter in parameters.values())
    assert parameters["per_page"]["schema"] == {"type": "integer", "default": 20, "minimum": 1, "maximum": 100}
    assert set(parameters["sort_by"]["schema"]["enum"]) == {
        "date_created",
        "task_time",
        "entity_name",
        "task_type",
        "status",
        "priority",
        "updated_at",
    }
    assert parameters["sort_order"]["schema"]["enum"] == ["asc", "desc"]


def test_every_query_parameter_has_a_type(spec):
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            assert parameter["schema"].get("type"), f"{method} {path} parameter {parameter['name']} has no type"


def test_path_parameters_are_documented_as_uuids(spec):
    for path in ("/api/tasks/{task_id}", "/api/tasks/{task_id}/status"):
        (parameter,) = spec["paths"][path]["parameters"]
        assert parameter == {
            "in": "path",
            "name": "task_id",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }


def test_dashboard_document(spec):
    operation = spec["paths"]["/api/analytics/dashboard"]["get"]
    body = json_schema(spec, operation["responses"]["200"])
    assert set(body["properties"]) == {"summary", "task_types", "user_tasks", "scope"}
    assert set(resolve(spec, body["properties"]["summary"])["properties"]) == {
        "total_tasks",
        "open_tasks",
        "in_progress_tasks",
        "closed_tasks",
        "cancelled_tasks",
        "overdue_tasks",
    }
    assert set(resolve(spec, body["properties"]["task_types"]["items"])["properties"]) == {"type", "count"}
    assert set(resolve(spec, body["properties"]["user_tasks"]["items"])["properties"]) == {"user", "user_id", "count"}
    (limit,) = operation["parameters"]
    assert limit["name"] == "limit"
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (1, 100, 10)


def test_swagger_ui(client):
    response = client.get(DOCS_URL)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page.lower()
    assert SPEC_URL in page


def test_team_and_project_endpoints_are_documented(spec):
    paths = spec["paths"]
    assert set(paths["/api/teams/{team_id}/members/{user_id}"]) >= {"patch", "delete"}
    assert set(paths["/api/projects/{project_id}/members"]) >= {"get", "post"}
    progress = json_schema(spec, paths["/api/projects/{project_id}/progress"]["get"]["responses"]["200"])
    assert set(progress["required"]) == {
        "total_tasks",
        "open_tasks",
        "in_progress_tasks",
        "completed_tasks",
        "cancelled_tasks",
        "overdue_tasks",
        "progress_percentage",
    }
    project = json_schema(spec, paths["/api/projects"]["post"]["responses"]["201"])
    assert "team_id" in project["required"]
    assert project["properties"]["team_id"].get("nullable") or "null" in str(project["properties"]["team_id"])
