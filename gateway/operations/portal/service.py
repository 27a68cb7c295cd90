"""The portal's web application: its middlewares, every page's routes, and the server loop.

Apart from ``server`` (the shared ``Portal`` state and middlewares) so that the page modules can
import ``server`` while this module imports them: one direction only, no import circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from importlib.resources import files

from aiohttp import web

from gateway.config import Config
from gateway.operations.portal import auth, live, pages, rights_pages
from gateway.operations.portal.server import (
    PORTAL,
    Portal,
    authenticate,
    headers,
    language,
    open_portal,
    tls_context,
)

__all__ = ["build_app", "serve"]

log = logging.getLogger("gateway.operations.portal.server")


def build_app(portal: Portal) -> web.Application:
    app = web.Application(middlewares=[headers, language, authenticate], client_max_size=64 * 1024)
    app[PORTAL] = portal
    auth.add_routes(app)
    pages.add_routes(app)
    rights_pages.add_routes(app)
    live.add_routes(app)
    static = files("gateway.operations.portal") / "static"
    app.router.add_static("/static/", str(static), append_version=False)

    async def closing(app: web.Application) -> None:
        await portal.close()

    app.on_cleanup.append(closing)
    return app


async def serve(config: Config, ready: Callable[[str], None] | None = None) -> None:
    """Run the portal until cancelled."""
    portal = open_portal(config)
    settings = portal.settings
    context = tls_context(config, settings)
    runner = web.AppRunner(build_app(portal), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
    await site.start()
    scheme = "https" if context else "http"
    where = f"{scheme}://{settings.host}:{settings.port}/"
    log.warning("portal: listening on %s", where)
    if ready is not None:
        ready(where)
    try:
        while True:
            await asyncio.sleep(300)
            with contextlib.suppress(Exception):
                portal.store.expire()
    finally:
        await runner.cleanup()
