"""The console: one HTML page and its script and style, served from the package at `/`.

No build step and no third-party assets: the page is plain HTML and JavaScript that calls
the API with the key the user types (kept in the tab's session storage, never in the page).
The Content-Security-Policy allows only this origin's script, style and API calls, so text
from the API can never run as code.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from serving.errors import NotFound

_ASSETS = files("serving") / "console"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str]]:
    assets = {}
    for asset in _ASSETS.iterdir():
        suffix = "." + asset.name.rpartition(".")[2]
        if suffix in _TYPES:
            assets[asset.name] = (asset.read_bytes(), _TYPES[suffix])
    return assets


ASSETS = _load()

router = APIRouter(tags=["console"], include_in_schema=False)


def _asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"no console asset {name!r}")
    body, media_type = found
    return Response(body, media_type=media_type, headers=_HEADERS)


@router.get("/")
async def console_page() -> Response:
    """The console's page."""
    return _asset("index.html")


@router.get("/console/{name}")
async def console_asset(name: str) -> Response:
    """The console's script and style."""
    return _asset(name)
