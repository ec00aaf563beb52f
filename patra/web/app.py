"""The application factory: routes, middleware and what runs beside the web server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from litestar import Litestar, Response, get
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

import patra
from patra import db, migrate
from patra.events import CHANNEL
from patra.plugins import call_async
from patra.receivers import ReceiverSupervisor
from patra.runtime import Runtime
from patra.web import errors, live
from patra.web.security import security_headers_middleware
from patra.web.templates import build_environment, theme_dirs

logger = logging.getLogger(__name__)

CSRF_EXEMPT_PREFIXES = ["/api/", "/widget/", "/webhooks/"]


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict:
    """The process is alive and serving."""
    return {"status": "ok"}


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def favicon() -> Redirect:
    """Browsers ask for this path on their own; the theme's icon is an SVG."""
    return Redirect("/static/favicon.svg", status_code=301)


@get("/readyz", include_in_schema=False)
async def readyz() -> Response:
    """The database answers and every migration is applied."""
    current = patra.runtime.current()
    try:
        missing = await migrate.unapplied(current.plugins)
    except (OSError, asyncpg.PostgresError) as error:
        return Response(
            {"status": "unavailable", "detail": f"database: {type(error).__name__}"},
            status_code=503,
        )
    if missing:
        names = [f"{space}/{path.name}" for space, path in missing]
        return Response(
            {"status": "unavailable", "detail": "migrations pending", "pending": names},
            status_code=503,
        )
    return Response({"status": "ok"})


def create_app(runtime: Runtime, *, run_background: bool = True) -> Litestar:
    """Build the Litestar application for ``runtime``.

    ``run_background`` starts the job worker and the channel receivers in this
    process (``patra serve``); tests and ``--no-jobs`` turn it off.
    """
    config = runtime.config
    plugins = runtime.plugins

    plugin_routes = [
        route for routes in plugins.hook.register_routes() for route in routes or []
    ]
    template_dirs = [
        path for dirs in plugins.hook.register_template_dirs() for path in dirs or []
    ]
    static_routers = [
        create_static_files_router(
            path="/static",
            directories=theme_dirs(config.server.theme, "static"),
            name="static",
            include_in_schema=False,
            send_as_attachment=False,
        )
    ]
    for static in plugins.hook.register_static_dirs():
        for name, folder in static or []:
            static_routers.append(
                create_static_files_router(
                    path=f"/static/plugins/{name}",
                    directories=[Path(folder)],
                    name=f"static-{name}",
                    include_in_schema=False,
                )
            )

    from patra.web import accounts_views, admin_views, api, inbox_views

    environment = build_environment(config.server.theme, template_dirs)
    channels = ChannelsPlugin(
        backend=AsyncPgChannelsBackend(
            make_connection=lambda: asyncpg.connect(
                **db.asyncpg_params(runtime.database_url)
            )
        ),
        channels=[CHANNEL],
        subscriber_max_backlog=1000,
        subscriber_backlog_strategy="dropleft",
    )
    background: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owns_pool = await db.open_pool()
        await migrate.migrate(plugins, runtime.jobs)
        await call_async(plugins.hook.startup, app=app, config=config)
        if run_background:
            await _start_background(runtime, background)
        try:
            yield
        finally:
            await _stop_background(background)
            await call_async(plugins.hook.shutdown, app=app)
            if owns_pool:
                await db.close_pool()

    return Litestar(
        route_handlers=[
            healthz,
            favicon,
            readyz,
            live.agent_events,
            *accounts_views.ROUTES,
            *inbox_views.ROUTES,
            *admin_views.ROUTES,
            api.api_router,
            *static_routers,
            *plugin_routes,
        ],
        lifespan=[lifespan],
        plugins=[channels, HTMXPlugin()],
        middleware=[security_headers_middleware],
        csrf_config=CSRFConfig(
            secret=config.server.secret_key,
            cookie_name="patra_csrf",
            header_name="x-csrftoken",
            cookie_secure=config.public_url.startswith("https://"),
            cookie_httponly=False,
            exclude=[f"^{prefix}" for prefix in CSRF_EXEMPT_PREFIXES],
        ),
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(environment)
        ),
        openapi_config=OpenAPIConfig(
            title="Patra API",
            version="1",
            path="/api/schema",
            render_plugins=[JsonRenderPlugin()],
            components=api.openapi_components(),
        ),
        exception_handlers={
            HTTPException: errors.handle_http_exception,
            OverflowError: errors.handle_out_of_range,
            asyncpg.DataError: errors.handle_out_of_range,
            500: errors.handle_server_error,
        },
        request_max_body_size=config.server.max_body_mb * 1024 * 1024,
        logging_config=None,  # Patra's CLI configures logging once, for everything
        debug=False,
    )


async def _start_background(runtime: Runtime, background: dict) -> None:
    jobs = runtime.jobs
    await jobs.open_async()
    background["worker"] = asyncio.create_task(
        jobs.run_worker_async(
            concurrency=runtime.config.jobs.concurrency,
            install_signal_handlers=False,
            shutdown_graceful_timeout=25,
            name="patra-serve",
        ),
        name="job-worker",
    )
    supervisor = ReceiverSupervisor()
    supervisor.start()
    background["receivers"] = supervisor
    background["jobs"] = jobs


async def _stop_background(background: dict) -> None:
    """Let running jobs finish (up to the grace period), then close."""
    if "receivers" in background:
        await background["receivers"].stop()
    worker = background.get("worker")
    if worker is not None:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    if "jobs" in background:
        await background["jobs"].close_async()
