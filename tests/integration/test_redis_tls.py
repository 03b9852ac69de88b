"""Redis over TLS for real: a redis-server that speaks only TLS, with a throwaway CA made here, client
certificates required and an ACL user with a password; the inventory flow writes through it and the API
reads through it, configured only with `OMNISTREAM_REDIS_*` settings.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
import trustme

from events.topics import Topic
from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from state import keys
from state.connection import connect
from tests.harness.api import issue_key, key_headers, running_api
from tests.harness.flows import publish, run_to_end

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-secret-for-this-test"
USER, PASSWORD = "omnistream", "s3cret/with:odd@chars"


class TlsRedis:
    """A TLS-only redis-server on a free port, its CA and a client certificate, all in `folder`."""

    def __init__(self, folder: Path) -> None:
        ca = trustme.CA()
        server, client = ca.issue_cert("127.0.0.1", "localhost"), ca.issue_cert("omnistream-client")
        self.ca_file, self.cert_file, self.key_file = folder / "ca.pem", folder / "client.pem", folder / "client.key"
        ca.cert_pem.write_to_path(str(self.ca_file))
        client.cert_chain_pems[0].write_to_path(str(self.cert_file))
        client.private_key_pem.write_to_path(str(self.key_file))
        server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
        server.private_key_pem.write_to_path(str(folder / "server.key"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(folder / "server.pem"), "--tls-key-file", str(folder / "server.key"),
             "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "yes",
             "--requirepass", ADMIN_PASSWORD, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def admin(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=ADMIN_PASSWORD, ssl=True,
                           ssl_ca_certs=str(self.ca_file), ssl_certfile=str(self.cert_file),
                           ssl_keyfile=str(self.key_file))  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed")
    server = TlsRedis(tmp_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                admin = server.admin()
                admin.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the TLS redis-server did not start"
                time.sleep(0.1)
        # An ACL user of its own, as a production deployment would give Omnistream.
        admin.acl_setuser(USER, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], channels=["*"],
                          commands=["+@all"])  # fmt: skip
        admin.close()
        yield server
    finally:
        server.stop()


def test_flow_and_api_work_over_tls_with_an_acl_user(settings: Settings, tls_redis: TlsRedis, tmp_path: Path) -> None:
    tls_settings = settings.model_copy(update={"redis": {
        "url": f"rediss://127.0.0.1:{tls_redis.port}/0", "username": USER, "password": PASSWORD,
        "tls_ca_file": tls_redis.ca_file, "tls_cert_file": tls_redis.cert_file, "tls_key_file": tls_redis.key_file,
    }})  # fmt: skip
    # model_copy skips validation: build the settings as a process reading the variables would.
    tls_settings = Settings.model_validate(tls_settings.model_dump())
    assert tls_settings.redis.url.startswith(f"rediss://{USER}:")
    assert PASSWORD not in tls_settings.redis.display_url

    # The plain-text port is closed, and TLS without the client certificate is refused.
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2).ping()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=tls_redis.port, ssl=True, ssl_ca_certs=str(tls_redis.ca_file),
                    socket_timeout=2).ping()  # fmt: skip

    receipt = {"event_id": "tls-r1", "type": "receipt", "ts": "2026-11-22T01:00:00Z", "schema_version": 1,
               "sku": "SKU-TLS", "location_id": "WH-01", "qty": 7}  # fmt: skip
    publish(tls_settings, [(Topic.INVENTORY, b"SKU-TLS", orjson.dumps(receipt))])
    run_to_end(tls_settings.model_copy(update={"flow_stop_at_end": True}), timeout_s=120)

    client = connect(tls_settings.redis.url)
    try:
        assert client.acl_whoami() == USER
        doc = orjson.loads(client.hget(keys.stock("SKU-TLS"), keys.STOCK_DOC_FIELD) or b"{}")
    finally:
        client.close()
    assert doc["total_available"] == 7

    key = issue_key(tls_settings.redis.url, "storefront").key
    api_settings = tls_settings.model_copy(update={"api_redis_timeout_ms": 2000})
    with running_api(api_settings, tmp_path / "api.log") as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        stock = httpx.get(f"{base}/v1/inventory/SKU-TLS", headers=key_headers(key))
        assert stock.status_code == 200, stock.text
        assert stock.json()["total_available"] == 7
        assert httpx.get(f"{base}/v1/inventory/SKU-TLS").status_code == 401
    assert PASSWORD not in (tmp_path / "api.log").read_text(errors="replace")


def test_api_serves_https_with_the_serve_options(settings: Settings, tmp_path: Path) -> None:
    """`omnistream serve --ssl-certfile --ssl-keyfile`: the API behind TLS, keys still required."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    cert, key_file, ca_file = tmp_path / "api.pem", tmp_path / "api.key", tmp_path / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    trusted = ssl.create_default_context(cafile=str(ca_file))
    port = free_port()
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnistream.cli", "serve", "--port", str(port), "--ssl-certfile", str(cert),
         "--ssl-keyfile", str(key_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusted, timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "the HTTPS API did not start"
                time.sleep(0.2)
        assert health.status_code == 200
        key = issue_key(settings.redis.url, "storefront").key
        assert httpx.get(f"https://127.0.0.1:{port}/v1/inventory/X", verify=trusted).status_code == 401
        read = httpx.get(f"https://127.0.0.1:{port}/v1/inventory/X", verify=trusted, headers=key_headers(key))
        assert read.status_code == 404  # admitted; no such SKU
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken on that port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        proc.terminate()
        proc.wait(10)
