"""`omnistream serve`: the HTTP API under uvicorn in the foreground."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from omnistream.cli.common import API_APP, fail, load_settings, port_free


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: OMNISTREAM_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [default: OMNISTREAM_API_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Development only: no API keys needed (announced loudly at start).")
    ] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).")] = None,
) -> None:
    """Run the HTTP API (uvicorn) in the foreground."""
    if no_auth:
        os.environ["OMNISTREAM_AUTH_ENABLED"] = "false"  # read by the app factory in every worker
    if (ssl_certfile is None) != (ssl_keyfile is None):
        fail("give both --ssl-certfile and --ssl-keyfile, or neither")
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
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
