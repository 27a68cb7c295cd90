"""The live log: Server-Sent Events of the session's customer's new entries, filtered as the
page is, each event one table row rendered by the same template as the page (autoescaped).

A customer's streams share one read of the log (``feed``: at most one read per 0.5 s through the
reader bound to that customer, whatever the number of streams), so a new entry reaches the
browser within about a second of its commit; more than a screenful behind, a stream jumps
to the newest rows (the rest is in the log's pages). Each row is rendered once per language and
find for all of the customer's streams and pages (``Portal.row_html``); a stream writes what one
read brought in one write. Streams are capped (``portal.max_live_sessions``); a stream ends when
its session expires or is revoked, checked every few seconds, and the browser's EventSource
reconnects (to the login).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from gateway.operations.portal.feed import POLL_S, SCREEN
from gateway.operations.portal.pages import _int, log_filters
from gateway.operations.portal.server import LANG, PORTAL, TOKEN, Portal, session_of

__all__ = ["add_routes"]

BURST = SCREEN  # rows per write at most: a screenful
HEARTBEAT_S = 15.0
RECHECK_S = 5.0


async def stream(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = session_of(request)
    token = request[TOKEN] or ""
    lang = request[LANG]
    if portal.live >= portal.settings.max_live_sessions:
        raise web.HTTPServiceUnavailable(text="too many live views open; reload in a minute")
    reader = await portal.reader(session.customer)
    filters = log_filters(request)
    find = request.query.get("find", "").strip()[:200] or None
    last = _int(request.query.get("after")) or 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    portal.live += 1
    feed = portal.feeds.join(session.customer, reader, last, bool(filters))
    try:
        await response.prepare(request)
        beat = checked = time.monotonic()
        while True:
            # The newest rows above ``last``, a screenful at most: more than that behind (a
            # flood, or a stream that was away) it jumps ahead; the rows skipped are in the
            # log's pages, and a stream never falls behind nor renders more than one can read.
            rows, last = await feed.since(last, filters, BURST)
            if rows:
                names = await portal.display_names(session.customer)
                events = [portal.rows.event(session.customer, r, lang, find, names) for r in rows]
                await response.write(b"".join(events))
            now = time.monotonic()
            if now - beat > HEARTBEAT_S:
                await response.write(b": still here\n\n")
                beat = now
            if now - checked > RECHECK_S:
                if portal.store.session(token) is None:
                    await response.write(b"event: ended\ndata: {}\n\n")
                    break
                checked = now
            transport = request.transport
            if transport is None or transport.is_closing():
                break  # the browser went away: free the live slot now, not at the heartbeat
            await asyncio.sleep(POLL_S)
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        portal.live -= 1
        portal.feeds.leave(session.customer, bool(filters))
        with contextlib.suppress(Exception):
            await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/live", stream)
