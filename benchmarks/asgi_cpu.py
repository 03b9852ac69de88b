"""CPU per request of the API's ASGI app, driven in process: no HTTP server, no load generator.

Prints one JSON line: `{"path_kind": cpu_us_per_request, ...}`. Run by benchmarks/auth.py once per
tree (this file is run by path, so `serving` comes from whichever tree is first on PYTHONPATH):
the same requests against the API with and without the key check, each over the same Redis.
On a shared machine this moves far less than requests/s through uvicorn, which the other
processes' load decides; what it leaves out (uvicorn's HTTP parsing) is the same for both.

    OMNISTREAM_REDIS_URL=... python benchmarks/asgi_cpu.py --key osk_... --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any


async def drive(app: Any, paths: list[str], headers: list[tuple[bytes, bytes]], concurrency: int) -> float:
    """CPU seconds per request over `paths`, `concurrency` requests in flight at a time."""

    async def one(path: str) -> int:
        raw_path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
                 "app": app}  # fmt: skip
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    statuses = [
        s for b in range(0, 200, concurrency) for s in await asyncio.gather(*map(one, paths[b : b + concurrency]))
    ]
    assert all(s == 200 for s in statuses), f"warm-up answered {sorted(set(statuses))}"
    started = time.process_time()
    for batch in range(0, len(paths), concurrency):
        await asyncio.gather(*(one(p) for p in paths[batch : batch + concurrency]))
    return (time.process_time() - started) / len(paths)


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    from serving.app import create_app

    app = create_app()
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if args.key:
        headers.append((b"authorization", f"Bearer {args.key}".encode()))
    skus = [f"SKU-{(n * 7919) % args.skus:07d}" for n in range(args.requests)]
    kinds = {
        "inventory": [f"/v1/inventory/{sku}" for sku in skus],
        "recommendations": [f"/v1/recommendations?session_id=S-{n}&sku={sku}" for n, sku in enumerate(skus)],
    }
    result = {}
    async with app.router.lifespan_context(app):
        for kind, paths in kinds.items():
            result[kind] = await drive(app, paths, headers, args.concurrency) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key", default="")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skus", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
