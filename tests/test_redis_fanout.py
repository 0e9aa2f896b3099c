"""Two real server processes (gunicorn + eventlet, gunicorn.conf.py) and the CLI, joined by Redis.

A client connected to process A receives what process B and `flask tasks sweep-overdue` emitted; a conversation
created on B puts A's sockets in its room; a logout on B drops A's socket. Skipped when Redis does not answer.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from unittest.mock import ANY

import pytest
import requests
from flask_jwt_extended import create_access_token

from finstack.core.time import utcnow
from finstack.tasks import service as tasks

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT = 60


def _redis_answers():
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason=f"Redis does not answer at {REDIS_URL}")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(database_url, **extra):
    env = {key: value for key, value in os.environ.items() if key not in ("SOCKETIO_ASYNC_MODE", "BIND")}
    env.update(
        FINSTACK_ENV="testing",  # the test secrets, so the tests can sign tokens the servers accept
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        HOST="127.0.0.1",
        FLASK_APP="app",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.fixture
def servers(database_url, tmp_path, admin):
    """Two gunicorn processes on the test database; yields their base URLs. A user exists before they start, so
    neither tries to create the default admin (two processes racing to do that is bootstrap's concern, not ours)."""
    started = []
    for name in ("a", "b"):
        port = _free_port()
        log = open(tmp_path / f"server-{name}.log", "w")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
            cwd=ROOT,
            env=_environment(database_url, PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((process, log, f"http://127.0.0.1:{port}", tmp_path / f"server-{name}.log"))
    try:
        for process, _, url, log_path in started:
            _wait_healthy(process, url, log_path)
        yield [url for _, _, url, _ in started]
    finally:
        for process, _, _, _ in started:
            process.terminate()
        for process, log, _, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def _wait_healthy(process, url, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"server at {url} did not start within {START_TIMEOUT} s:\n{log_path.read_text()}")


def bearer(user):
    return {"Authorization": f"Bearer {create_access_token(identity=str(user.id))}"}


def test_a_client_on_one_process_receives_what_the_other_process_and_the_cli_emit(
    servers, database_url, make_user, admin, connect_socket
):
    url_a, url_b = servers
    member, partner = make_user(), make_user()
    sock, partner_sock = connect_socket(url_a, member), connect_socket(url_b, partner)
    # 1. A REST call on B notifies the member, whose socket is on A.
    task = tasks.create_task(
        admin,
        entity_name="Acme Ltd",
        task_type="Call",
        task_time=utcnow() + timedelta(days=1),
        contact_person_id=member.id,
        status="open",
    )
    response = requests.post(
        f"{url_b}/api/tasks/{task.id}/comments", json={"content": "From B"}, headers=bearer(admin), timeout=10
    )
    assert response.status_code == 201, response.text
    pushed = sock.wait_for("notification", lambda n: n["type"] == "task_commented", timeout=10)
    assert pushed["task_id"] == str(task.id)

    # 2. The overdue sweep, run as a separate CLI process, reaches the socket on A.
    overdue = tasks.create_task(
        admin,
        entity_name="Late Ltd",
        task_type="Filing",
        task_time=utcnow() - timedelta(hours=2),
        contact_person_id=member.id,
        status="open",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "tasks", "sweep-overdue"],
        cwd=ROOT,
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0 and "No such command" in result.stderr:
        pytest.skip("`flask tasks sweep-overdue` does not exist yet")
    assert result.returncode == 0, result.stdout + result.stderr
    swept = sock.wait_for("notification", lambda n: n["type"] == "task_overdue", timeout=10)
    assert swept["task_id"] == str(overdue.id)

    # 3. A DM created over REST on B while both are connected: A's socket joins its room (control channel),
    #    and a message sent through a socket on B arrives on A.
    response = requests.post(
        f"{url_b}/api/chat/conversations",
        json={"participant_ids": [str(member.id)], "is_group": False},
        headers=bearer(partner),
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    conversation_id = response.json()["id"]
    ack = partner_sock.call(
        "send_message",
        {"conversation_id": conversation_id, "content": "Across processes", "client_id": uuid.uuid4().hex},
        timeout=10,
    )
    assert "error" not in ack, ack
    assert sock.wait_for("chat_message", lambda m: m["id"] == ack["id"], timeout=10) == {**ack, "seq": ANY}

    # 4. Logging out on B drops the socket held by A within a second.
    token = create_access_token(identity=str(member.id))
    other = connect_socket(url_a, token=token)
    response = requests.post(
        f"{url_b}/api/auth/logout", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    start = time.monotonic()
    assert other.wait_disconnected(timeout=5)
    assert time.monotonic() - start < 1.0
    assert sock.connected


def test_a_reconnect_with_last_seq_replays_what_the_other_process_recorded_then_its_live_events(
    servers, make_user, admin, connect_socket
):
    """The member's socket is on A; while it is away B records events for them; back on A with `last_seq` it gets
    each missed event once, in order, then B's live events through Redis, numbered on without a gap."""
    url_a, url_b = servers
    member = make_user()
    # A task per comment, made first (by this process, which has no Redis: its own events are only replayed):
    # repeats about one task within a minute would collapse into one notification.
    own_tasks = iter(
        [
            tasks.create_task(
                admin,
                entity_name="Acme Ltd",
                task_type="Call",
                task_time=utcnow() + timedelta(days=1),
                contact_person_id=member.id,
                status="open",
            )
            for _ in range(5)
        ]
    )

    def comment(content):
        response = requests.post(
            f"{url_b}/api/tasks/{next(own_tasks).id}/comments",
            json={"content": content},
            headers=bearer(admin),
            timeout=10,
        )
        assert response.status_code == 201, response.text

    def sequenced(sock):
        return [data["seq"] for _, data in list(sock.received) if isinstance(data, dict) and "seq" in data]

    sock = connect_socket(url_a, member)
    comment("seen live")
    sock.wait_for("notification", lambda n: n["type"] == "task_commented", timeout=10)
    time.sleep(0.3)
    last_seq = max(sequenced(sock))
    sock.disconnect()
    for number in range(1, 4):
        comment(f"away {number}")

    again = connect_socket(url_a, member, last_seq=last_seq)
    replayed_to = again.wait_for("events_replayed", timeout=10)["last_seq"]
    comment("live again")
    again.wait_for("notification", lambda n: "live again" in n["message"], timeout=10)
    time.sleep(0.3)
    messages = [n["message"] for n in again.events("notification") if n["type"] == "task_commented"]
    assert messages == ["away 1", "away 2", "away 3", "live again"]
    seqs = sequenced(again)
    assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs))) and replayed_to < seqs[-1]
