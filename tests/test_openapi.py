"""The OpenAPI document and Swagger UI: every API route documented, with its auth, request and response schemas."""

import io
import re
import uuid

import jsonschema_rs
import pytest
from marshmallow import fields, validate

from finstack.extensions import NUL_FREE, RESPONSE_SUFFIXES, flat_validators

SPEC_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
REDOC_URL = "/api/redoc"
DOCS_ASSETS_RULE = "/api/docs/assets/<path:filename>"
UNDOCUMENTED = {SPEC_URL, DOCS_URL, REDOC_URL, DOCS_ASSETS_RULE}
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
        "tags",
        "rank",
        "reminders",
        "repeat",
        "series_id",
        "occurrence",
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
    assert set(resolve(spec, page["properties"]["pagination"])["required"]) == {
        "page",
        "per_page",
        "total",
        "total_exact",
        "pages",
        "next_cursor",
    }
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
        "cursor",
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
        "tag",
        "due_from",
        "due_to",
        "q",
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
        "relevance",
    }
    assert parameters["sort_order"]["schema"]["enum"] == ["asc", "desc"]
    assert (parameters["q"]["schema"]["minLength"], parameters["q"]["schema"]["maxLength"]) == (1, 200)
    tag = parameters["tag"]
    assert tag["schema"]["type"] == "array" and tag["schema"]["maxItems"] == 20
    assert tag["schema"]["items"]["type"] == "string"
    assert (tag["schema"]["items"]["minLength"], tag["schema"]["items"]["maxLength"]) == (1, 40)
    assert tag.get("explode", True) is True  # tag=a&tag=b


def test_tags_documents(spec):
    operation = spec["paths"]["/api/tags"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"search", "page", "per_page", "cursor"}
    page = json_schema(spec, operation["responses"]["200"])
    item = resolve(spec, page["properties"]["items"]["items"])
    assert set(item["required"]) == {"tag", "count"}
    tags = json_schema(spec, spec["paths"]["/api/tasks"]["post"]["requestBody"])["properties"]["tags"]
    assert tags["type"] == "array" and tags["maxItems"] == 20 and tags["items"]["maxLength"] == 40


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


def page_scripts(page):
    """Every stylesheet and script a docs page loads."""
    return re.findall(r'(?:src|href)="([^"]+)"', page)


@pytest.mark.parametrize(("url", "marker"), [(DOCS_URL, "swagger-ui"), (REDOC_URL, "<redoc")])
def test_docs_pages_load_everything_from_the_app(client, url, marker):
    """No CDN: every asset of /api/docs and /api/redoc is served by the app itself, pinned by a package."""
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert marker in page.lower()
    assert SPEC_URL in page
    assets = page_scripts(page)
    assert assets
    for asset in assets:
        assert asset.startswith("/api/docs/assets/"), f"{url} loads {asset} from outside the app"
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.mimetype in {"text/javascript", "application/javascript", "text/css"}, (asset, served.mimetype)
        assert len(served.data) > 10_000, asset


def test_docs_assets_do_not_serve_outside_their_folder(client):
    assert client.get("/api/docs/assets/../../__init__.py").status_code == 404
    assert client.get("/api/docs/assets/swagger-ui-dist/missing.js").status_code == 404


# -- the spec says what the server does ----------------------------------------------------------------------------

DOCUMENTED_BY_TYPE = (validate.Email, validate.URL)  # fields.Email / fields.Url add these; the spec says `format`


def expected_keywords(field):
    """The JSON-schema keywords `field`'s validators (composed ones unfolded) must put in the spec."""
    expected = dict(getattr(field, "openapi", {}))
    is_array = isinstance(field, fields.List | fields.Nested)
    numeric = isinstance(field, fields.Number)
    minimum, maximum = [], []
    for validator in flat_validators(field.validators):
        if isinstance(validator, validate.Length):
            low, high = ("minItems", "maxItems") if is_array else ("minLength", "maxLength")
            if validator.equal is not None:
                minimum.append((low, validator.equal))
                maximum.append((high, validator.equal))
            if validator.min is not None:
                minimum.append((low, validator.min))
            if validator.max is not None:
                maximum.append((high, validator.max))
        elif isinstance(validator, validate.Range):
            low, high = ("minimum", "maximum") if numeric else ("x-minimum", "x-maximum")
            if validator.min is not None:
                minimum.append((low, field._serialize(validator.min, None, None)))
            if validator.max is not None:
                maximum.append((high, field._serialize(validator.max, None, None)))
        elif isinstance(validator, validate.OneOf):
            expected["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Regexp):
            expected["pattern"] = validator.regex.pattern
        elif isinstance(validator, DOCUMENTED_BY_TYPE):
            continue
        elif not hasattr(validator, "openapi"):
            pytest.fail(f"{field.name}: validator {validator!r} is not documented (give it an `openapi` dict)")
        else:
            expected.update(validator.openapi)
    for key, value in minimum:
        expected[key] = max(value, expected.get(key, value))
    for key, value in maximum:
        expected[key] = min(value, expected.get(key, value))
    has_format = isinstance(field, fields.Email | fields.Url)
    if isinstance(field, fields.String) and not has_format and "pattern" not in expected:
        expected.setdefault("pattern", NUL_FREE)
    return expected


def declared_arguments(app):
    """(method, path, location, schema instance) for every `@bp.arguments` of every API view."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api") or rule.rule in UNDOCUMENTED:
            continue
        declared = getattr(app.view_functions[rule.endpoint], "_apidoc", {}).get("arguments", {})
        for parameter in declared.get("parameters", []):
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            for method in rule.methods - AUTOMATIC_METHODS:
                yield method.lower(), openapi_path(rule.rule), parameter["in"], schema


def documented_property(spec, operation, location, name):
    if location in {"query", "querystring"}:
        (parameter,) = [p for p in operation["parameters"] if p["name"] == name and p["in"] == "query"]
        return parameter["schema"]
    return body_schema(spec, operation)["properties"][name]


def test_every_validation_constraint_is_in_the_spec(app, spec):
    """Walks every operation's parsed arguments: each validator (composed or custom) appears in the spec."""
    checked = 0
    for method, path, location, schema in declared_arguments(app):
        operation = spec["paths"][path][method]
        for name, field in schema.load_fields.items():
            documented = documented_property(spec, operation, location, field.data_key or name)
            for keyword, value in expected_keywords(field).items():
                assert documented.get(keyword) == value, f"{method} {path} {name}: {keyword} {value!r} vs {documented}"
                checked += 1
    assert checked > 100, "the walk found too few constraints: is the url_map read right?"


def test_composed_and_custom_validators_are_documented(spec):
    schemas = spec["components"]["schemas"]
    username = schemas["RegisterIn"]["properties"]["username"]
    assert (username["minLength"], username["maxLength"], username["pattern"]) == (3, 64, "^[A-Za-z0-9_.-]+$")
    full_name = schemas["RegisterIn"]["properties"]["full_name"]
    assert (full_name["minLength"], full_name["maxLength"]) == (1, 120)
    assert re.search(full_name["pattern"], " x ") and not re.search(full_name["pattern"], "   ")
    assert not re.search(full_name["pattern"], "a\x00b")
    date_from = {p["name"]: p for p in spec["paths"]["/api/tasks"]["get"]["parameters"]}["date_from"]["schema"]
    assert date_from["anyOf"] == [{"format": "date"}, {"format": "date-time"}]


def reachable_components(spec, node, found=None):
    found = set() if found is None else found
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in found:
                found.add(name)
                reachable_components(spec, spec["components"]["schemas"][name], found)
        for value in node.values():
            reachable_components(spec, value, found)
    elif isinstance(node, list):
        for value in node:
            reachable_components(spec, value, found)
    return found


def test_response_schemas_mark_every_field_required(spec):
    """Generated clients get `id: string`, not `id?: string`: every field a response dumps is always there."""
    in_responses, in_requests = set(), set()
    for _, _, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code.startswith("2"):
                reachable_components(spec, response, in_responses)
        reachable_components(spec, operation.get("requestBody", {}), in_requests)
        reachable_components(spec, operation.get("parameters", []), in_requests)
    assert {"TaskOut", "UserBrief", "TaskPage", "PaginationMeta"} <= in_responses
    for name in in_responses:
        schema = spec["components"]["schemas"][name]
        assert sorted(schema.get("required", [])) == sorted(schema["properties"]), f"{name} leaves fields optional"
    assert not in_responses & in_requests, "a schema used both ways cannot be exact for both: split it"
    assert not {name for name in in_requests if name.endswith(RESPONSE_SUFFIXES)}


def test_nullable_nested_objects_are_t_or_null_and_request_defaults_optional(spec):
    task = spec["components"]["schemas"]["TaskOut"]
    assert spec["openapi"].startswith("3.1")
    assert task["properties"]["contact_person"] == {
        "anyOf": [{"$ref": "#/components/schemas/UserBrief"}, {"type": "null"}]
    }
    assert task["properties"]["creator"] == {"$ref": "#/components/schemas/UserBrief"}
    assert task["properties"]["closed_at"]["type"] == ["string", "null"]
    # while request fields with defaults stay optional
    create = spec["components"]["schemas"]["TaskCreate"]
    assert create["properties"]["priority"]["default"] == "medium"
    assert "priority" not in create["required"] and "status" not in create["required"]


def test_a_required_body_sent_empty_is_a_400(app, spec, admin, auth_headers):
    """Every write whose spec marks the JSON body required refuses a request with no body at all."""
    client, headers = app.test_client(), auth_headers(admin)
    refused, optional = set(), set()
    for method, path, operation in operations(spec):
        body = operation.get("requestBody")
        if not body or "application/json" not in body["content"]:
            continue
        if not body.get("required"):
            optional.add((method, path))
            continue
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = client.open(url, method=method.upper(), headers=headers)
        assert response.status_code == 400, f"{method} {path} answered {response.status_code} to no body"
        assert response.json["code"] == "body_required", (method, path, response.json)
        refused.add((method, path))
    assert {("put", "/api/users/me"), ("put", "/api/users/me/preferences"), ("post", "/api/tasks")} <= refused
    assert optional == {
        ("post", "/api/auth/logout"),
        ("patch", "/api/tasks/{task_id}/cancel"),
        ("post", "/api/chat/conversations/{conversation_id}/read"),
    }
    assert client.post("/api/auth/logout", headers=headers).status_code == 200, "an optional body may be left out"


def documented_media_types(spec, path, method, code="200"):
    return set(resolve(spec, spec["paths"][path][method]["responses"][code]).get("content", {}))


def test_responses_come_in_a_documented_media_type(client, spec, admin, auth_headers):
    """What the routes really produce — JSON, CSV reports, file downloads with their stored type — is documented."""
    headers = auth_headers(admin)
    task = client.post(
        "/api/tasks",
        json={"entity_name": "Acme", "task_type": "audit", "task_time": "2030-01-01T09:00:00+00:00"},
        headers=headers,
    ).json
    files = {"file": (io.BytesIO(b"%PDF-1.4 minimal"), "report.pdf")}
    attachment = client.post(
        f"/api/tasks/{task['id']}/attachments", data=files, headers=headers, content_type="multipart/form-data"
    ).json
    cases = [
        ("/api/tasks", "get", "/api/tasks", "application/json"),
        ("/api/reports/user-productivity", "get", "/api/reports/user-productivity?format=csv", "text/csv"),
        ("/api/reports/user-productivity", "get", "/api/reports/user-productivity", "application/json"),
        ("/api/reports/team-overview", "get", "/api/reports/team-overview?format=csv", "text/csv"),
        ("/api/reports/team-performance", "get", "/api/reports/team-performance?format=csv", "text/csv"),
        ("/api/reports/workload", "get", "/api/reports/workload?format=csv", "text/csv"),
        (
            "/api/tasks/{task_id}/attachments/{attachment_id}/download",
            "get",
            f"/api/tasks/{task['id']}/attachments/{attachment['id']}/download",
            "application/pdf",
        ),
    ]
    for path, method, url, produced in cases:
        response = client.open(url, method=method.upper(), headers=headers)
        assert response.status_code == 200, (url, response.status_code)
        assert response.mimetype == produced
        assert produced in documented_media_types(spec, path, method), f"{url} produces {produced}, undocumented"


def test_downloads_document_every_type_a_stored_file_can_have(spec):
    from finstack.attachments.filetypes import FILE_TYPES

    served = {content_type for content_type, _ in FILE_TYPES.values()}
    for path in (
        "/api/tasks/{task_id}/attachments/{attachment_id}/download",
        "/api/chat/conversations/{conversation_id}/attachments/{attachment_id}/download",
    ):
        assert documented_media_types(spec, path, "get") == served


def response_validator(spec, path, method, status):
    """A JSON-schema validator for the documented JSON body of `method path` answering `status`."""
    response = resolve(spec, spec["paths"][path][method]["responses"][str(status)])
    schema = dict(response["content"]["application/json"]["schema"])
    schema["components"] = spec["components"]  # so "#/components/..." references resolve inside this document
    return jsonschema_rs.Draft202012Validator(schema)


def test_real_responses_match_the_documented_schemas(client, spec, admin, member, auth_headers):
    """A walk through the product as a front end uses it; every JSON answer validates against the spec."""
    as_admin, as_member = auth_headers(admin), auth_headers(member)
    checked = []

    def call(method, path, url=None, headers=as_admin, **kwargs):
        response = client.open(url or path, method=method.upper(), headers=headers, **kwargs)
        assert response.status_code < 300, (method, url or path, response.status_code, response.get_data(as_text=True))
        if response.status_code != 204:
            errors = [
                error.message
                for error in response_validator(spec, path, method, response.status_code).iter_errors(response.json)
            ]
            assert not errors, f"{method} {url or path}: {errors}\n{response.json}"
        checked.append((method, path))
        return response.json

    task_in = {
        "entity_name": "Acme",
        "task_type": "audit",
        "task_time": "2030-01-01T09:00:00+00:00",
        "contact_person_id": str(member.id),
    }
    task = call("post", "/api/tasks", json=task_in)
    unassigned = call("post", "/api/tasks", json={**task_in, "contact_person_id": None})
    assert unassigned["contact_person"] is None
    tid = task["id"]
    call("get", "/api/tasks", "/api/tasks?status=open&sort_by=task_time")
    call("get", "/api/tasks/{task_id}", f"/api/tasks/{tid}")
    call("put", "/api/tasks/{task_id}", f"/api/tasks/{tid}", json={"note": "n", "version": task["version"]})
    call("patch", "/api/tasks/{task_id}/status", f"/api/tasks/{tid}/status", json={"status": "closed"})
    call("post", "/api/tasks/bulk-status", json={"task_ids": [tid, unassigned["id"]], "status": "open"})
    call(
        "post",
        "/api/tasks/{task_id}/comments",
        f"/api/tasks/{tid}/comments",
        json={"content": f"hi @{member.username}"},
    )
    call("get", "/api/tasks/{task_id}/comments", f"/api/tasks/{tid}/comments")
    files = {"file": (io.BytesIO(b"plain text"), "notes.txt")}
    call("post", "/api/tasks/{task_id}/attachments", f"/api/tasks/{tid}/attachments", data=files)
    call("get", "/api/tasks/{task_id}/attachments", f"/api/tasks/{tid}/attachments")
    call("get", "/api/notifications", headers=as_member)
    call("get", "/api/notifications/unread-count", headers=as_member)
    conversation = call("post", "/api/chat/conversations", json={"participant_ids": [str(member.id)]})
    cid = conversation["id"]
    call(
        "post",
        "/api/chat/conversations/{conversation_id}/messages",
        f"/api/chat/conversations/{cid}/messages",
        json={"content": "hello"},
    )
    call(
        "get",
        "/api/chat/conversations/{conversation_id}/messages",
        f"/api/chat/conversations/{cid}/messages",
        headers=as_member,
    )
    call("get", "/api/chat/conversations/{conversation_id}", f"/api/chat/conversations/{cid}", headers=as_member)
    call("get", "/api/chat/conversations", headers=as_member)
    call("get", "/api/chat/tasks/{task_id}/conversation", f"/api/chat/tasks/{tid}/conversation")
    call("get", "/api/chat/users/available")
    call("get", "/api/tasks/{task_id}/activity", f"/api/tasks/{tid}/activity")
    project = call("post", "/api/projects", json={"name": "Books", "key": "BKS"})
    call("get", "/api/reports/project/{project_id}", f"/api/reports/project/{project['id']}")
    call("get", "/api/dashboard", headers=as_member)
    for path in (
        "/api/activity",
        "/api/reports/team-performance",
        "/api/reports/workload",
        "/api/analytics/dashboard",
        "/api/reports/user-productivity",
        "/api/reports/team-overview",
        "/api/audit-logs",
        "/api/users",
        "/api/users/me",
        "/api/users/me/preferences",
        "/api/auth/me",
    ):
        call("get", path)
    call("get", "/api/users/{user_id}", f"/api/users/{member.id}")
    assert len(checked) > 25


def test_an_upload_refuses_form_fields_its_schema_does_not_have(client, spec, admin, auth_headers):
    """The upload's documented schema allows only `file`; a stray form field is refused like an unknown JSON field."""
    upload = body_schema(spec, spec["paths"]["/api/tasks/{task_id}/attachments"]["post"])
    assert upload["additionalProperties"] is False
    headers = auth_headers(admin)
    task_in = {"entity_name": "Acme", "task_type": "audit", "task_time": "2030-01-01T09:00:00+00:00"}
    task = client.post("/api/tasks", json=task_in, headers=headers).json
    data = {"file": (io.BytesIO(b"plain text"), "notes.txt"), "comment": "stray"}
    response = client.post(f"/api/tasks/{task['id']}/attachments", data=data, headers=headers)
    assert response.status_code == 400
    assert response.json["details"] == {"comment": ["Unknown field."]}


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
