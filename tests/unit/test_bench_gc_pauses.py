"""The endpoint benchmarks read the API's collections from /metrics, and read none from a server without them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.inventory import gc_pauses

_METRICS = b"""# HELP omnistream_api_gc_pause_seconds Collections of the API process.
# TYPE omnistream_api_gc_pause_seconds histogram
omnistream_api_gc_pause_seconds_bucket{generation="0",le="0.001"} 3.0
omnistream_api_gc_pause_seconds_bucket{generation="0",le="0.005"} 4.0
omnistream_api_gc_pause_seconds_bucket{generation="0",le="+Inf"} 5.0
omnistream_api_gc_pause_seconds_count{generation="0"} 5.0
omnistream_api_gc_pause_seconds_sum{generation="0"} 0.02
"""


@contextmanager
def _server(status: int, body: bytes) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_collections_come_from_the_histogram_by_generation() -> None:
    with _server(200, _METRICS) as port:
        assert gc_pauses(port) == {"0": {"count": 5.0, "seconds": 0.02, "over_5ms": 1.0}}


def test_a_server_without_metrics_reports_no_collections_instead_of_failing() -> None:
    with _server(404, b'{"detail":"Not Found"}') as port:  # the bare baseline route's answer
        assert gc_pauses(port) == {}
