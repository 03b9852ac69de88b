"""The API as tests call it: API keys of each role, and the API run under uvicorn in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from state.api_keys import IssuedKey, KeyStore
from state.connection import connect


def issue_key(redis_url: str, role: str = "admin", name: str = "test", rate_per_s: float | None = None) -> IssuedKey:
    """A fresh key of `role` stored in the Redis at `redis_url`, as `omnistream keys create` stores it."""
    client = connect(redis_url)
    try:
        return KeyStore(client).create(role, name, rate_per_s)
    finally:
        client.close()


def key_headers(key: str) -> dict[str, str]:
    """The headers that send `key` (`Authorization: Bearer`)."""
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def running_api(
    settings: Settings, log_path: Path, extra_env: Mapping[str, str] | None = None, timeout_s: float = 30.0
) -> Iterator[str]:
    """`serving.app:create_app` under uvicorn on a free port, its output in `log_path`; yields the base URL."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), **(extra_env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start in {timeout_s} s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
