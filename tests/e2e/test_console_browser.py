"""The console in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright) against
the real API, a live inventory flow, Kafka and Redis.

The page logs in with a console key, searches a SKU, and must show the new available count
within a second of the flow writing it after a POS sale is produced to Kafka, and the
low-stock alert the sale raises must appear in the live feed, and a fraud alert about a shopper must
show in the fraud feed with the shopper's id masked, all without a console error.
A screenshot is saved in the test's folder.

The browser comes from the system package (`apt-get install chromium`), never downloaded by the
test; without it the test skips and says so. CI installs it (.ci/run).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.alerts import Alert, Entity, Severity
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.launcher import start_flow
from omnistream.settings import Settings
from state import keys
from state.connection import connect
from state.stream_writer import StreamWriter, alert_records
from tests.harness.api import issue_key, running_api
from tests.harness.flows import publish

pytestmark = pytest.mark.e2e

SKU = "SKU-CONSOLE-1"
STORE = "STORE-07"
SHOPPER = "U-PRIVATE-0042"  # a customer id: the console must never show it whole


def chromium_path() -> str | None:
    """The system Chromium: OMNISTREAM_TEST_CHROMIUM, else `chromium` / `chromium-browser` on PATH."""
    given = os.environ.get("OMNISTREAM_TEST_CHROMIUM")
    if given:
        return given
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _envelope(kind: str) -> dict[str, Any]:
    return {"event_id": f"{kind}-{uuid.uuid4().hex[:12]}", "type": kind, "ts": rfc3339_ms(time.time()),
            "schema_version": 1}  # fmt: skip


def receipt(qty: int) -> tuple[Topic, bytes, bytes]:
    event = _envelope("receipt") | {"sku": SKU, "location_id": STORE, "qty": qty}
    return Topic.INVENTORY, SKU.encode(), orjson.dumps(event)


def cash_sale(qty: int) -> tuple[Topic, bytes, bytes]:
    event = _envelope("sale") | {
        "store_id": STORE, "register_id": f"{STORE}-R1", "cashier_id": f"{STORE}-C1",
        "txn_id": f"T-{uuid.uuid4().hex[:10]}", "currency": "USD", "customer_id": None,
        "items": [{"sku": SKU, "qty": qty, "unit_price": 5.0}], "total": 5.0 * qty, "payment": {"method": "cash"},
    }  # fmt: skip
    return Topic.POS, STORE.encode(), orjson.dumps(event)


def add_fraud_alert(redis_url: str, user_id: str) -> None:
    alert = Alert(alert_id=f"a-{uuid.uuid4().hex[:8]}", kind="fraud", severity=Severity.EMERGENCY,
                  entity=Entity("user", user_id), reasons=["card used from three countries within an hour"],
                  ts=rfc3339_ms(time.time()), score=0.97)  # fmt: skip
    client = connect(redis_url)
    try:
        StreamWriter(client, keys.alerts_stream(), generation="browser-test").add_batch(alert_records([alert]))
    finally:
        client.close()


def available_in_redis(redis_url: str) -> int | None:
    client = connect(redis_url)
    try:
        doc = client.hget(keys.stock(SKU), keys.STOCK_DOC_FIELD)
    finally:
        client.close()
    return None if doc is None else int(orjson.loads(doc)["total_available"])


def wait_until(condition: Any, what: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    return time.monotonic()


@pytest.fixture
def live_inventory(settings: Settings) -> Iterator[Settings]:
    run = start_flow("inventory", settings)
    try:
        yield settings
    finally:
        run.stop()


def test_console_shows_stock_change_within_a_second_and_the_new_alert(live_inventory: Settings, tmp_path: Path) -> None:
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no system Chromium: install Debian's `chromium` package (CI's .ci/run does)")
    from playwright.sync_api import sync_playwright

    settings = live_inventory
    publish(settings, [receipt(10)])
    wait_until(lambda: available_in_redis(settings.redis.url) == 10, "the receipt to be applied", 60)
    key = issue_key(settings.redis.url, "console", "browser-test").key
    api_settings = settings.model_copy(update={"api_redis_timeout_ms": 2000, "api_sse_keepalive_s": 1.0})

    with running_api(api_settings, tmp_path / "api.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on(
            "console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        try:
            page.goto(base + "/")
            page.fill("#key", key)
            page.click("#login-form button")
            page.wait_for_selector("#who:has-text('console')", timeout=10_000)
            assert key not in page.content()  # the key is in session storage, not in the page

            page.fill("#sku", SKU)
            page.click("#stock-form button")
            page.wait_for_selector("#total-available:text-is('10')", timeout=10_000)
            page.wait_for_selector("#alerts-live:text-is('live')", timeout=10_000)

            publish(settings, [cash_sale(6)])  # 10 - 6 = 4: at or below the low-stock threshold (5)
            produced_at = time.monotonic()
            processed_at = wait_until(lambda: available_in_redis(settings.redis.url) == 4, "the sale to apply", 60)
            page.wait_for_selector("#total-available:text-is('4')", timeout=5_000)
            seen_at = time.monotonic()
            print(f"sale produced -> written by the flow {processed_at - produced_at:.3f} s -> "
                  f"shown by the page {seen_at - processed_at:.3f} s")  # fmt: skip
            assert seen_at - processed_at < 1.0

            alert = page.wait_for_selector(f"#alert-feed li:has-text('low_stock'):has-text('{SKU}')", timeout=10_000)
            assert alert is not None
            assert "warning" in (alert.get_attribute("class") or "")

            # Flow health: the live inventory flow has read everything, so its consumer lag reads 0.
            page.wait_for_selector("#flow-table td[data-flow='inventory']:text-is('0')", timeout=15_000)

            # A fraud alert about a shopper, added as the fraud flow adds it: in both feeds, the id masked.
            add_fraud_alert(settings.redis.url, SHOPPER)
            fraud = page.wait_for_selector("#fraud-feed li:has-text('fraud')", timeout=10_000)
            assert fraud is not None and "emergency" in (fraud.get_attribute("class") or "")
            assert "user U-…42" in fraud.inner_text()
            assert SHOPPER not in page.inner_text("body")
            page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.screenshot(path=str(tmp_path / "console-phone.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        finally:
            browser.close()
        print(f"screenshots: {tmp_path / 'console.png'}, {tmp_path / 'console-phone.png'}")
        assert problems == []
