"""End-to-end fixtures: the API as its own process, the way it is deployed.

The API runs under uvicorn in a child process with the test's settings passed
as `OMNISTREAM_*` variables (`flows.launcher.settings_env`), so the test reads
stock over real HTTP from the same Redis the flow writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from tests.harness.api import issue_key, key_headers

API_START_TIMEOUT_S = 30.0
# The default Redis timeout of the API (80 ms) is a latency budget for production; on a
# shared test machine busy with the flow it would turn a slow read into a 503 and a
# false failure. This test checks what the API answers, not how fast.
API_REDIS_TIMEOUT_MS = 2000


@dataclass
class RunningApi:
    """The API process under test: its base URL, the process, its log, and the headers of a storefront key."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    headers: dict[str, str]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n_chars:]


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[RunningApi]:
    """The API (`serving.app:create_app`) on a free loopback port, ready (`/readyz` is 200)."""
    port = free_port()
    api_settings = settings.model_copy(update={"api_port": port, "api_redis_timeout_ms": API_REDIS_TIMEOUT_MS})
    env = {**os.environ, **settings_env(api_settings)}
    log_path = tmp_path / "api.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    storefront = key_headers(issue_key(settings.redis.url, "storefront").key)
    running = RunningApi(f"http://127.0.0.1:{port}", proc, log_path, storefront)
    try:
        _wait_ready(running)
        yield running
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(running: RunningApi) -> None:
    deadline = time.monotonic() + API_START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if not running.alive():
            pytest.fail(f"the API exited with {running.proc.returncode} while starting:\n{running.log_tail()}")
        try:
            response = httpx.get(f"{running.url}/readyz", timeout=1.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as ex:
            last = repr(ex)
        time.sleep(0.1)
    pytest.fail(f"the API was not ready within {API_START_TIMEOUT_S:.0f} s (last: {last}):\n{running.log_tail()}")
