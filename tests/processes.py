"""Real server and CLI processes on the test database: `python app.py` (`Server`), `flask ...` (`flask_cli`)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60


def environment(database_url, **extra):
    env = {key: value for key, value in os.environ.items() if key not in ("SOCKETIO_ASYNC_MODE", "BIND")}
    env.update(
        FINSTACK_ENV="testing",  # the test secrets, so the tests can sign tokens the servers accept
        DATABASE_URL=database_url,
        FLASK_APP="app",
        PYTHONUNBUFFERED="1",
        MAIL_USE_TLS="false",
        **{key: str(value) for key, value in extra.items()},
    )
    return env


def flask_cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


class Server:
    """`python app.py` on the test database, in a subprocess."""

    def __init__(self, env, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env={**env, "PORT": str(self.port), "HOST": "127.0.0.1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        pytest.fail(f"server did not start within {START_TIMEOUT} s:\n{self.log_path.read_text()}")

    def kill(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()
