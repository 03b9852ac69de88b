"""The API's composition: settings, Redis client, middleware, error handlers, routers.

Run it with `uvicorn --factory serving.app:create_app --no-access-log` (one worker per core;
the settings come from `OMNISTREAM_*` variables). OpenAPI docs are at `/docs`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from events.topics import Topic
from omnistream.settings import Settings, settings_or_exit
from operators.recs.experiments import parse_variants
from serving import metrics
from serving.backend import reader_for
from serving.collector import ParsedListCollector, freeze_startup_objects
from serving.errors import install_error_handlers
from serving.fast_path import StockFastPath
from serving.rec_fast_path import RecommendationsFastPath
from serving.rec_served import ServedPublisher
from serving.routes import alerts, experiments, forecasts, health, inventory, recommendations, scores
from serving.routes.recommendations import Recommender
from state.connection import connect_async
from state.forecast_reader import ForecastReader
from state.fraud_reader import FraudReader
from state.rec_reader import RecReader

API_VERSION = "1.0.0"  # CONTRACT.md v1; additive changes bump the minor

_DESCRIPTION = """\
Live stock, recommendations and fraud scores computed by Omnistream's flows.

Every error is `{"error": {"code", "message"}}`: 404 `not_found`, 422 `invalid_parameter`
(the message names the parameter), 503 `backend_unavailable` (answered fast; retry),
500 `internal_error`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the Redis client for the app's lifetime (no connection yet: `/readyz` tells when Redis answers)."""
    settings: Settings = app.state.settings
    timeout_s = settings.api.redis_timeout_ms / 1000
    client = connect_async(settings.redis.url, timeout_s=timeout_s)
    app.state.redis = client
    app.state.stock_reader = reader_for(client, settings.redis.url, timeout_s)
    app.state.fraud_reader = FraudReader(client)
    app.state.forecast_reader = ForecastReader(client)
    # The alerts stream blocks in XREAD between alerts: its own pool, with a timeout above the block.
    stream_client = connect_async(settings.redis.url, timeout_s=settings.api.sse_keepalive_s + 5.0)
    app.state.stream_redis = stream_client
    # The producer connects in the background: a broker that is down costs requests nothing.
    publisher = ServedPublisher(settings.kafka.brokers, settings.topic(Topic.REC_SERVED), settings.rec.served_queue_max)
    app.state.metrics.registry.register(publisher)
    app.state.recommender = Recommender(
        RecReader(client, settings.rec.api_cache_s, after_parse=ParsedListCollector()),
        publisher,
        parse_variants(settings.rec.variants),
        settings.rec.experiment_salt,
    )
    freeze_startup_objects()
    try:
        yield
    finally:
        app.state.metrics.registry.unregister(publisher)
        publisher.flush(2.0)
        await stream_client.aclose()
        await client.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: read from the environment, exiting on a bad value)."""
    settings = settings or settings_or_exit()
    try:  # refused here, before serving, with the variable's name: settings import no operator to check it
        parse_variants(settings.rec.variants)
    except ValueError as ex:
        raise SystemExit(f"omnistream: bad configuration: OMNISTREAM_REC_VARIANTS: {ex}") from None
    app = FastAPI(
        title="Omnistream API",
        version=API_VERSION,
        description=_DESCRIPTION,
        lifespan=lifespan,
        # Every request is matched against the routes in order, these included: keep only
        # /docs and /openapi.json (no OAuth2 flows to redirect, and one docs UI is enough).
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics.ApiMetrics()
    install_error_handlers(app)
    # The hot resource first: FastAPI tries the included routers in order, and each one it
    # passes costs a matching pass (with the probes ahead, an inventory read cost ~30 µs more
    # of its ~450 µs on the benchmark machine).
    app.include_router(inventory.router)
    app.include_router(scores.router)
    app.include_router(alerts.router)
    app.include_router(recommendations.router)
    app.include_router(experiments.router)
    app.include_router(forecasts.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Added last-but-one so the metrics middleware (added last, hence outermost) counts
    # the fast path's requests too.
    app.add_middleware(StockFastPath, api=app)
    app.add_middleware(RecommendationsFastPath, api=app)
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    return app
