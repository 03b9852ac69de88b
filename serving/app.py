"""The API's composition: settings, Redis client, middleware, error handlers, routers.

Run it with `uvicorn --factory serving.app:create_app --no-access-log` (one worker per core;
the settings come from `OMNISTREAM_*` variables). OpenAPI docs are at `/docs`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from events.topics import Topic
from omnistream.settings import Settings, settings_or_exit
from operators.customers.lifecycle import SEGMENTS
from operators.recs.experiments import parse_variants
from serving import metrics
from serving.auth.keys import KeyCache
from serving.auth.middleware import ApiKeyAuth
from serving.auth.openapi import install_security_schema
from serving.auth.rate_limit import RateLimiter
from serving.backend import reader_for
from serving.collector import ParsedListCollector, freeze_startup_objects
from serving.errors import install_error_handlers
from serving.fast_paths import FastPaths
from serving.rec_served import ServedPublisher
from serving.routes import (
    alerts,
    attribution,
    console,
    customers,
    experiments,
    flows,
    forecasts,
    fulfilment,
    health,
    inventory,
    loyalty,
    orders,
    recommendations,
    reservations,
    scores,
    session,
    suggestions,
)
from serving.routes.recommendations import Recommender
from state.api_keys import KeyLookup
from state.attribution_reader import AttributionReader
from state.connection import connect_async
from state.customer_reader import CustomerReader
from state.event_log import EventLog
from state.forecast_reader import ForecastReader
from state.fraud_reader import FraudReader
from state.idempotency import IdempotencyStore
from state.loyalty_reader import LoyaltyReader
from state.loyalty_requests import RequestLog
from state.order_reader import OrderReader
from state.rec_reader import RecReader
from state.reservations import ReservationStore
from state.suggestion_reader import SuggestionReader

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"  # CONTRACT.md v1; additive changes bump the minor

_DESCRIPTION = """\
Live stock, recommendations and fraud scores computed by Omnistream's flows.

Every error is `{"error": {"code", "message"}}`: 404 `not_found`, 422 `invalid_parameter`
(the message names the parameter), 503 `backend_unavailable` (answered fast; retry),
500 `internal_error`.

Every `/v1/` route needs an API key (`omnistream keys create --role ...`), sent as
`Authorization: Bearer <key>` or `X-API-Key: <key>`: 401 `unauthorized` without a valid
key, 403 `forbidden` when the key's role (storefront < console < admin) is too low,
429 `rate_limited` (with `Retry-After`) past the key's rate.
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
    app.state.customer_reader = CustomerReader(client, SEGMENTS)
    app.state.key_cache = KeyCache(KeyLookup(client), settings.auth.key_cache_s)
    app.state.order_reader = OrderReader(client)
    app.state.fulfilment_model = fulfilment.cost_model(settings)
    app.state.reservations = ReservationStore(client)
    app.state.idempotency = IdempotencyStore(client)
    # Reservations are published and acknowledged before the 202 (`state.event_log`).
    event_log = EventLog(settings.kafka.brokers, settings.reservations.publish_timeout_s)
    app.state.event_log = event_log
    app.state.forecast_reader = ForecastReader(client)
    # The alerts stream blocks in XREAD between alerts: its own pool, with a timeout above the block.
    stream_client = connect_async(settings.redis.url, timeout_s=settings.api.sse_keepalive_s + 5.0)
    app.state.stream_redis = stream_client
    # The producer connects in the background: a broker that is down costs requests nothing.
    publisher = ServedPublisher(settings.kafka.brokers, settings.topic(Topic.REC_SERVED), settings.rec.served_queue_max,
                                security=settings.kafka.security_config())  # fmt: skip
    app.state.metrics.registry.register(publisher)
    app.state.recommender = Recommender(
        RecReader(client, settings.rec.api_cache_s, after_parse=ParsedListCollector()),
        publisher,
        parse_variants(settings.rec.variants),
        settings.rec.experiment_salt,
        similar_lists=settings.rec.knn_sessions > 0,
    )
    app.state.suggestion_reader = SuggestionReader(client)
    app.state.loyalty = loyalty.LoyaltyDesk(
        LoyaltyReader(client),
        RequestLog(settings.kafka.brokers, settings.topic(Topic.MEMBERS)),
        app.state.idempotency,
        settings.loyalty,
    )
    app.state.attribution = attribution.AttributionDesk(
        AttributionReader(client), settings.attribution.api_cache_s, settings.attribution.max_days
    )
    app.state.metrics.time_collections()
    freeze_startup_objects()
    try:
        yield
    finally:
        app.state.loyalty.requests.close()
        app.state.metrics.close()
        app.state.metrics.registry.unregister(publisher)
        publisher.flush(2.0)
        event_log.close()
        await stream_client.aclose()
        await client.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: read from the environment, exiting on a bad value)."""
    settings = settings or settings_or_exit()
    try:  # refused here, before serving, with the variable's name: settings import no operator to check it
        parse_variants(settings.rec.variants)
    except ValueError as ex:
        raise SystemExit(f"omnistream: bad configuration: OMNISTREAM_REC_VARIANTS: {ex}") from None
    try:
        fulfilment.cost_model(settings)
    except ValueError as ex:
        raise SystemExit(f"omnistream: bad configuration: OMNISTREAM_FULFILMENT_SHIP_COSTS: {ex}") from None
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
    app.include_router(suggestions.router)
    app.include_router(customers.customers_router)
    app.include_router(customers.segments_router)
    app.include_router(customers.triggers_router)
    app.include_router(loyalty.router)
    app.include_router(attribution.router)
    app.include_router(fulfilment.router)
    app.include_router(orders.router)
    app.include_router(reservations.router)
    app.include_router(forecasts.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(session.router)
    app.include_router(flows.router)
    app.include_router(console.router)
    # Added last-but-one so the metrics middleware (added last, hence outermost) counts
    # the fast path's requests too.
    app.add_middleware(FastPaths, api=app, routes=[
        inventory.FAST_ROUTE, recommendations.FAST_ROUTE, fulfilment.FAST_ROUTE, reservations.FAST_ROUTE,
        orders.FAST_ROUTE, customers.FAST_ROUTE, customers.SEGMENTS_FAST_ROUTE, forecasts.FAST_ROUTE,
        loyalty.FAST_ROUTE, attribution.FAST_ROUTE,
    ])  # fmt: skip
    # Outside the fast paths, which answer before FastAPI's routing (where a dependency never runs).
    if settings.auth.enabled:
        limiter = RateLimiter(settings.auth.rate_per_s, settings.auth.burst_s)
        app.add_middleware(ApiKeyAuth, api=app, limiter=limiter)
    else:
        warn_no_auth()
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    install_security_schema(app)
    return app


def warn_no_auth() -> None:
    """Say loudly, on stderr and in the log, that this API lets anyone in."""
    banner = (
        "\n" + "!" * 78 + "\n!! omnistream API: AUTHENTICATION IS OFF (OMNISTREAM_AUTH_ENABLED=false / --no-auth).\n"
        "!! Anyone who reaches this port can read everything. Development only.\n" + "!" * 78 + "\n"
    )
    print(banner, file=sys.stderr, flush=True)
    log.warning("authentication is off: every route is open to anyone who reaches the API")
