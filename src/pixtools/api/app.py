"""The app factory: one ``create_app(settings)`` for ``pixtools api`` and ``pixtools dev``.

It wires the adapters, the outbox relay, (in embedded mode) the in-process workers, the
routes, auth, rate limiting, CORS, security headers, error mapping, metrics and docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from pixtools import __version__
from pixtools.api.admin import AdminController
from pixtools.api.auth import provide_admin, provide_principal
from pixtools.api.catalogue import operations
from pixtools.api.docs import docs_router
from pixtools.api.errors import EXCEPTION_HANDLERS
from pixtools.api.health import health, livez, metrics, readyz
from pixtools.api.jobs import (
    STATE_HEADER,
    JobController,
    client_config,
    ml_available,
    webhook_attempts,
)
from pixtools.api.middleware import (
    RateLimitMiddleware,
    RequestGuardMiddleware,
    RequestMetricsMiddleware,
    add_security_headers,
    head_as_get,
)
from pixtools.api.openapi import document_errors
from pixtools.api.sources import create_upload
from pixtools.api.waiters import JobWaiters
from pixtools.messaging.relay import relaying
from pixtools.observability.metrics import ApiMetrics
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.database import LocalSignals

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")


@get("/openapi.json", include_in_schema=False, media_type=MediaType.JSON)
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The OpenAPI document, as the docs pages load it."""
    schema = request.app.openapi_schema.to_schema()
    return Response(JsonRenderPlugin.render_json(request, schema), media_type=MediaType.JSON)


def create_app(settings: Settings) -> Litestar:
    """Build the ASGI app. In embedded mode (no broker URL) workers run in this process."""
    metrics_ = ApiMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not settings.database_url:  # the embedded SQLite file lives in the data folder
            await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
        if settings.runs_migrations:
            from pixtools.store.migrate import upgrade

            await asyncio.to_thread(upgrade, settings.effective_database_url)
        signals = LocalSignals()
        services = build_services(settings, signals=signals)
        app.state.services = services
        try:
            workers = None
            if settings.embedded:  # the workers run in this process, on the relay's broker
                from pixtools.embedded import in_process_workers

                workers = in_process_workers(services, signals)
            async with relaying(settings, services, workers=workers) as relay:
                app.state.relay = relay
                async with _serving(app, services):
                    yield
        finally:
            await services.close()

    @contextlib.asynccontextmanager
    async def _serving(app: Litestar, services: Services) -> AsyncIterator[None]:
        waiters = JobWaiters(services.db)
        app.state.waiters = waiters
        await waiters.start()
        try:
            from pixtools.imaging import build_info

            info = build_info()
            metrics_.pillow_build.labels(
                str(info["pillow_version"]), str(info["is_simd"]).lower()
            ).set(1)
        except Exception:  # informational only
            log.warning("could not read the Pillow build", exc_info=True)
        log.info("pixtools api ready (embedded=%s)", settings.embedded)
        try:
            yield
        finally:
            await waiters.stop()

    cors = (
        CORSConfig(allow_origins=[settings.cors_origin], expose_headers=[STATE_HEADER])
        if settings.cors_origin
        else None
    )
    app = Litestar(
        route_handlers=[
            JobController,
            AdminController,
            webhook_attempts,
            create_upload,
            operations,
            client_config,
            livez,
            readyz,
            health,
            metrics,
            openapi_json,
            docs_router(),
            create_static_files_router(
                path="/", directories=[STATIC_DIR], html_mode=True, include_in_schema=False
            ),
        ],
        dependencies={
            "services": Provide(_provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "admin": Provide(provide_admin),
        },
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "metrics": metrics_,
                "started": time.time(),
                "trusted_networks": settings.trusted_networks,
                "upload_slots": asyncio.Semaphore(settings.upload_concurrency),
                "ml_steps": not settings.embedded or ml_available(),
            }
        ),
        cors_config=cors,
        before_send=[add_security_headers],
        middleware=[
            RequestMetricsMiddleware(),
            RateLimitMiddleware(),
            RequestGuardMiddleware(),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_upload_bytes + 256 * 1024,
        openapi_config=OpenAPIConfig(
            title="PixTools",
            version=__version__,
            description="Asynchronous image processing: submit an image and a job spec, "
            "poll or receive a signed webhook, download outputs or a ZIP.",
            path="/schema",
            # Only the JSON: the UIs are /docs and /redoc (pixtools.api.docs), served offline.
            render_plugins=[JsonRenderPlugin()],
        ),
        logging_config=None,
        debug=False,
    )
    document_errors(app.openapi_schema)
    # Keyed as Litestar fills ``scope["path_template"]``: the path's format, parameters
    # without their types (``/api/v1/jobs/{job_id}``, not ``{job_id:uuid}``).
    app.state.allowed_methods = {
        route.path_format: ", ".join(
            sorted(route.methods | ({"HEAD"} if "GET" in route.methods else set()))
        )
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    app.asgi_handler = head_as_get(app.asgi_handler)  # before routing (see head_as_get)
    return app


def _provide_services(state: State) -> Services:
    services: Services = state.services
    return services
