"""The npm socket.io-client (as an Angular or React app uses it) against the live server: tests/js/client_flow.mjs."""

import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
PASSWORD = "js-client-password-1"


def _skip_reason():
    if NODE is None:
        return "node is not installed: the JS-client test needs node (and `npm ci --prefix tests/js`)"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        return "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (.ci/run does)"
    return None


def test_the_js_client_logs_in_gets_notified_chats_and_catches_up(live_server, make_user):
    reason = _skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    alice, bob = make_user(full_name="Alice", password=PASSWORD), make_user(full_name="Bob", password=PASSWORD)
    result = subprocess.run(
        [NODE, str(JS_DIR / "client_flow.mjs"), live_server.url, alice.username, bob.username, PASSWORD],
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(result.stdout)
    assert result.returncode == 0, f"node exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip().endswith("OK")
