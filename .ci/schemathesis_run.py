"""Schemathesis against a live server (run by .ci/run): the spec must say what the server does.

Starts `python app.py` on a fresh embedded SQLite database with rate limits off, seeds a member and a task,
then runs `schemathesis run --checks all` with a bounded number of examples per operation, once with the
member's token, then once with the admin's, and prints each pass's responses by status. Exits non-zero on any
failure (a 5xx, a schema violation, ...), and when most of a pass's responses are 401 (its token stopped working,
so the pass tested little beyond authentication).

Usage: python .ci/schemathesis_run.py [--max-examples N]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".ci" / "schemathesis.toml"  # per-operation exceptions, each with its reason
ADMIN_PASSWORD = "schemathesis-admin-password"
MEMBER_PASSWORD = "schemathesis-member-password"
# The coverage phase (every boundary and type of every parameter) is the slow one: it runs once, as the admin,
# who may reach every operation; the member's run fuzzes, to see what a member's token is allowed and refused.
# The member goes first: schemathesis reuses ids it saw in responses (the member's, from /api/chat/users/available
# or /api/users), so the admin's pass deactivates the member and resets their password, and every request of a
# member pass after it would be a 401. Nothing the member may do reaches the admin's account.
PHASES = {"member": "examples,fuzzing", "admin": "examples,coverage,fuzzing"}
# Some 401s are expected (wrong passwords, bad refresh tokens, the `ignored_auth` check's requests without a token).
MAX_UNAUTHORIZED_SHARE = 0.5
# Operations that would end the run's own session: logging out revokes the token every later case presents.
EXCLUDED_PATHS = ("/api/auth/logout",)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url, server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before answering")
        try:
            if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    sys.exit(f"the server did not answer {url}/api/health within {timeout} s")


def login(url, username, password):
    response = requests.post(f"{url}/api/auth/login", json={"username": username, "password": password}, timeout=10)
    response.raise_for_status()
    return response.json()["access_token"]


def seed(url):
    """The admin's token, a member's token, and one task so reads find something."""
    admin = login(url, "admin", ADMIN_PASSWORD)
    member = {"username": "member", "email": "member@example.com", "full_name": "Member", "password": MEMBER_PASSWORD}
    requests.post(f"{url}/api/auth/register", json=member, timeout=10).raise_for_status()
    member_token = login(url, "member", MEMBER_PASSWORD)
    task = {"entity_name": "Seeded Ltd", "task_type": "review", "task_time": "2030-01-01T09:00:00+00:00"}
    headers = {"Authorization": f"Bearer {admin}"}
    requests.post(f"{url}/api/tasks", json=task, headers=headers, timeout=10).raise_for_status()
    return {"admin": admin, "member": member_token}


def run_schemathesis(url, role, token, max_examples, report_dir, phases):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--seed",
        "20261201",
        "--workers",
        "1",  # hypothesis's lambda descriptions are not thread-safe on Python 3.11 (a spurious runtime error)
        "--no-shrink",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "junit,har",
        "--report-junit-path",
        str(report_dir / f"schemathesis-{role}.xml"),
        "--report-har-path",
        str(report_dir / f"schemathesis-{role}.har"),
    ]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    print(f"== schemathesis as {role}: phases {phases}, {max_examples} examples per operation", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=report_dir)  # its cache folder lands there, not in the checkout
    print(f"== schemathesis as {role}: exit {result.returncode} in {time.monotonic() - started:.0f} s", flush=True)
    statuses = status_histogram(report_dir / f"schemathesis-{role}.har")
    print(f"== schemathesis as {role}: responses by status {statuses}", flush=True)
    return result.returncode, statuses


def status_histogram(har_path):
    """How many responses had each status (none when schemathesis stopped before writing its report)."""
    if not har_path.exists():
        return {}
    entries = json.loads(har_path.read_text())["log"]["entries"]
    return dict(sorted(Counter(entry["response"]["status"] for entry in entries).items()))


def mostly_unauthorized(statuses):
    total = sum(statuses.values())
    return total > 0 and statuses.get(401, 0) / total > MAX_UNAUTHORIZED_SHARE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finstack-schemathesis-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "FINSTACK_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp / 'schemathesis.db'}",
            "UPLOAD_FOLDER": str(tmp / "uploads"),
            "FINSTACK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "RATELIMIT_ENABLED": "false",
            "REGISTRATION_OPEN": "true",
        }
        env.pop("REDIS_URL", None)
        env.pop("MAIL_SERVER", None)
        with open(tmp / "server.log", "wb") as log:
            server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
            try:
                wait_healthy(url, server)
                tokens = seed(url)
                passes = {
                    role: run_schemathesis(url, role, tokens[role], args.max_examples, tmp, phases)
                    for role, phases in PHASES.items()
                }
            finally:
                server.terminate()
                server.wait(timeout=30)
        errors = [line for line in (tmp / "server.log").read_text(errors="replace").splitlines() if "Traceback" in line]
        if errors:
            print((tmp / "server.log").read_text(errors="replace")[-20000:])
    codes = [code for code, _ in passes.values()]
    refused = [role for role, (_, statuses) in passes.items() if mostly_unauthorized(statuses)]
    if any(codes) or errors or refused:
        sys.exit(
            f"schemathesis failed (exit codes {codes}, {len(errors)} server tracebacks, "
            f"passes answered mostly 401: {refused or 'none'})"
        )
    print("schemathesis: 0 server errors, 0 schema violations")


if __name__ == "__main__":
    main()
