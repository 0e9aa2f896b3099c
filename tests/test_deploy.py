"""deploy/nginx.conf in front of two real gunicorn processes joined by Redis: a Socket.IO session through nginx
(long-polling pinned to one process, then the WebSocket upgrade) and a DM delivered between the two processes.

Needs nginx (Debian's `nginx-light`; `.ci/run` installs it) and Redis; skipped with the reason otherwise.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from flask_jwt_extended import create_access_token

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
START_TIMEOUT = 60


def _redis_answers():
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return True
    except Exception:
        return False


pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)"),
    pytest.mark.skipif(not _redis_answers(), reason=f"Redis does not answer at {REDIS_URL}"),
]


def _free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(url, process, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {START_TIMEOUT} s:\n{log_path.read_text()}")


def nginx_config(tmp_path, listen_port, upstream_ports):
    """deploy/nginx.conf with the compose service names replaced by the test's processes, plus a header naming the
    process that answered (test only)."""
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    for service, port in zip(("app-1:5000", "app-2:5000"), upstream_ports, strict=True):
        assert f"server {service}" in config
        config = config.replace(f"server {service}", f"server 127.0.0.1:{port}")
    assert "listen 80;" in config and "access_log /dev/stdout finstack;" in config
    config = config.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    config = config.replace("access_log /dev/stdout finstack;", f"access_log {tmp_path}/access.log finstack;")
    config = config.replace(
        "proxy_pass http://finstack;", "proxy_pass http://finstack;\n add_header X-Upstream $upstream_addr always;"
    )
    path = tmp_path / "nginx.conf"
    path.write_text(config)
    return path


@pytest.fixture
def stack(database_url, tmp_path, admin):
    """Two gunicorn processes (REDIS_URL set) behind nginx; yields (nginx URL, {upstream address: direct URL})."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("SOCKETIO_ASYNC_MODE", "BIND", "WEB_CONCURRENCY")
    }
    env.update(FINSTACK_ENV="testing", DATABASE_URL=database_url, REDIS_URL=REDIS_URL, HOST="127.0.0.1")
    env.update(PYTHONUNBUFFERED="1", UPLOAD_FOLDER=str(tmp_path / "uploads"))
    processes, logs, upstreams = [], [], {}
    try:
        for name in ("app-1", "app-2"):
            port = _free_port()
            log_path = tmp_path / f"{name}.log"
            log = open(log_path, "w")  # noqa: SIM115 - closed at teardown
            logs.append(log)
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
                cwd=ROOT,
                env={**env, "PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            _wait(f"http://127.0.0.1:{port}", process, log_path)
            upstreams[f"127.0.0.1:{port}"] = f"http://127.0.0.1:{port}"

        nginx_port = _free_port()
        config = nginx_config(tmp_path, nginx_port, [int(address.split(":")[1]) for address in upstreams])
        switches = ["-p", str(tmp_path), "-c", str(config)]
        globals_ = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"
        checked = subprocess.run([NGINX, *switches, "-t", "-g", globals_], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr  # `nginx -t`: the shipped config is valid
        nginx_log = tmp_path / "nginx.out"
        with open(nginx_log, "w") as out:
            nginx = subprocess.Popen(
                [NGINX, *switches, "-g", f"daemon off; {globals_}"], stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(nginx)
        _wait(f"http://127.0.0.1:{nginx_port}", nginx, nginx_log)
        yield f"http://127.0.0.1:{nginx_port}", upstreams
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_socket_session_through_nginx_and_a_dm_across_the_two_processes(stack, make_user, connect_socket):
    proxy, upstreams = stack
    member, partner = make_user(), make_user()

    pinned = {requests.get(f"{proxy}/api/health", timeout=10).headers["X-Upstream"] for _ in range(5)}
    assert len(pinned) == 1, pinned  # ip_hash: one client address, one process
    (through_nginx,) = pinned
    (other_url,) = [url for address, url in upstreams.items() if address != through_nginx]

    # Long-polling first (every request must reach the same process), then the WebSocket upgrade, via nginx.
    sock = connect_socket(proxy, member, transports=("polling", "websocket"))
    deadline = time.monotonic() + 10
    while sock.transport() != "websocket" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock.transport() == "websocket"
    partner_sock = connect_socket(other_url, partner)  # on the other process, directly

    response = requests.post(
        f"{proxy}/api/chat/conversations",
        json={"participant_ids": [str(member.id)], "is_group": False},
        headers={"Authorization": f"Bearer {create_access_token(identity=str(partner.id))}"},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    conversation_id = response.json()["id"]

    ack = partner_sock.call(
        "send_message",
        {"conversation_id": conversation_id, "content": "From the other process", "client_id": uuid.uuid4().hex},
        timeout=10,
    )
    assert "error" not in ack, ack
    received = sock.wait_for("chat_message", lambda message: message["id"] == ack["id"], timeout=10)
    assert received == ack | {"seq": received["seq"]}  # the recipient's copy carries their event seq

    reply = sock.call(
        "send_message",
        {"conversation_id": conversation_id, "content": "Through nginx", "client_id": uuid.uuid4().hex},
        timeout=10,
    )
    assert "error" not in reply, reply
    received = partner_sock.wait_for("chat_message", lambda message: message["id"] == reply["id"], timeout=10)
    assert received == reply | {"seq": received["seq"]} and received["seq"] > 0
