"""The docs pages render in a real headless browser with no internet: Swagger UI at /api/docs, ReDoc at /api/redoc.

Debian's chromium (installed by .ci/run when missing) loads each page from a live server, with every host but
127.0.0.1 unresolvable, and dumps the DOM once the page has settled.
"""

import shutil
import subprocess

import pytest

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no CDN can answer: the page must be self-served
    "--virtual-time-budget=20000",
]
# Swagger UI virtualises its operation list from 150 tags + operations on: it renders only what the window shows.
# A window this tall shows every operation (about 60 px each), so the test can look for all of them.
TALL_WINDOW = "--window-size=1280,40000"


def render(url, tmp_path, *flags):
    if CHROMIUM is None:
        reason = "chromium is not installed: the docs-in-a-browser test needs it (`apt-get install chromium`)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    profile = tmp_path / "chromium-profile"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_swagger_ui_renders_the_operations(live_server, tmp_path):
    dom = render(f"{live_server.url}/api/docs", tmp_path, TALL_WINDOW)
    assert "opblock" in dom, f"Swagger UI rendered no operation:\n{dom[:3000]}"
    spec = live_server.app.test_client().get("/api/openapi.json").get_json()
    operations = sum(len(set(item) & HTTP_METHODS) for item in spec["paths"].values())
    assert dom.count('class="opblock ') == operations, "Swagger UI did not render every operation"
    for path in ("/api/tasks", "/api/auth/login", "/api/reports/team-overview"):
        assert f'data-path="{path}"' in dom, f"{path} is not rendered"


def test_redoc_renders_the_operations(live_server, tmp_path):
    dom = render(f"{live_server.url}/api/redoc", tmp_path)
    assert "operation/" in dom or "operation-" in dom or "api-content" in dom, f"ReDoc rendered nothing:\n{dom[:3000]}"
    for path in ("/api/tasks", "/api/auth/login"):
        assert path in dom, f"{path} is not rendered by ReDoc"
