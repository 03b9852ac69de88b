"""`serving.fast_paths`: which requests it answers, what it hands on to the FastAPI route, and its errors."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient

from serving.errors import NotFound, install_error_handlers
from serving.fast_paths import FastPaths, FastRoute


async def _item(api: FastAPI, item_id: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    if item_id == "missing":
        raise NotFound(f"no item {item_id!r}")
    return b'{"fast":"%s","pairs":%d}' % (item_id.encode(), len(pairs))


async def _search(api: FastAPI, _: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
    return b'{"fast":"search","q":"%s"}' % dict(pairs).get("q", "").encode()


def _client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/items/{item_id}")
    async def routed_item(item_id: str) -> Response:
        return Response(b'{"routed":"%s"}' % item_id.encode(), media_type="application/json")

    @app.get("/v1/search")
    async def routed_search() -> Response:
        return Response(b'{"routed":"search"}', media_type="application/json")

    app.add_middleware(FastPaths, api=app, routes=[
        FastRoute("/v1/items/{item_id}", _item, max_segment=8, query=False),
        FastRoute("/v1/search", _search),
    ])  # fmt: skip
    return TestClient(app)


def test_answers_its_routes_and_reads_the_query_only_where_asked() -> None:
    client = _client()
    assert client.get("/v1/items/A-1?x=1").json() == {"fast": "A-1", "pairs": 0}  # query=False: pairs not parsed
    assert client.get("/v1/search?q=kettle").json() == {"fast": "search", "q": "kettle"}


def test_hands_on_what_it_does_not_take() -> None:
    client = _client()
    assert client.get("/v1/items/TOO-LONG-ID").json() == {"routed": "TOO-LONG-ID"}  # over max_segment
    assert client.get("/v1/items/A/B").status_code == 404  # deeper path: no route here, none there either
    assert client.post("/v1/search").status_code == 405  # only GET is answered here


def test_an_answer_declining_goes_to_the_route() -> None:
    app = FastAPI()

    @app.get("/v1/search")
    async def routed() -> Response:
        return Response(b'{"routed":"search"}', media_type="application/json")

    async def declines(api: FastAPI, _: str, pairs: Sequence[tuple[str, str]]) -> bytes | None:
        return None

    app.add_middleware(FastPaths, api=app, routes=[FastRoute("/v1/search", declines)])
    assert TestClient(app).get("/v1/search?q=1").json() == {"routed": "search"}


def test_api_errors_are_answered_in_the_contract_shape() -> None:
    response = _client().get("/v1/items/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no item 'missing'"}}
