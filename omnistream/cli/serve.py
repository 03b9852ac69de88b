"""`omnistream serve`: the HTTP API under uvicorn in the foreground."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from omnistream.cli.common import API_APP, fail, load_settings, port_free


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: OMNISTREAM_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [default: OMNISTREAM_API_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API (uvicorn) in the foreground."""
    settings = load_settings(api_host=host, api_port=port)
    if not port_free(settings.api.host, settings.api.port):
        fail(f"{settings.api.host}:{settings.api.port} is in use; choose another with --port or OMNISTREAM_API_PORT")
    # The factory reads its settings from the environment, here and in every worker process.
    os.environ["OMNISTREAM_API_HOST"] = settings.api.host
    os.environ["OMNISTREAM_API_PORT"] = str(settings.api.port)
    import uvicorn

    uvicorn.run(
        API_APP,
        factory=True,
        host=settings.api.host,
        port=settings.api.port,
        workers=workers,
        access_log=False,  # a log line per request costs more than the handler (docs/performance.md)
    )
