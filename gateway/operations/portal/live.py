"""The live log: Server-Sent Events of the session's customer's new entries, filtered as the
page is, each event one table row rendered by the same template as the page (autoescaped).

Each stream polls its customer's bound reader (one query of ``seq > last`` on the chain's
index, about every 0.4 s), so a new entry reaches the browser within a second of its commit;
more than a screenful behind, it jumps to the newest rows (the rest is in the log's pages).
Streams are capped (``portal.max_live_sessions``); a stream ends when its session expires or is
revoked, checked every few seconds, and the browser's EventSource reconnects (to the login).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
from aiohttp import web

from gateway.operations.portal.pages import _int, log_filters, page, row_view
from gateway.operations.portal.server import LANG, PORTAL, TOKEN, Portal, session_of

__all__ = ["add_routes"]

POLL_S = 0.4
BURST = 50  # rows per poll at most: a screenful
RENDERED = 4096  # live rows kept rendered for the customer's other sessions
_TOP = 1 << 62  # "before" no seq: the page is read newest first, from ``after`` up
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
    try:
        await response.prepare(request)
        template = portal.env.get_template("row.html")
        beat = checked = time.monotonic()
        while True:
            # The newest rows above ``last``, a screenful at most: more than that behind (a
            # flood, or a stream that was away) it jumps ahead; the rows skipped are in the
            # log's pages, and a stream never falls behind nor renders more than one can read.
            rows = await page(reader, filters, after=last, before=_TOP, limit=BURST)
            for row in reversed(rows):
                key = (session.customer, row.seq, lang, find)
                event = portal.rendered.get(key)
                if event is None:
                    names = await asyncio.to_thread(portal.names, session.customer)
                    html = template.render(row=row_view(row, lang, find, names), t=None)
                    data = orjson.dumps({"seq": row.seq, "html": html}).decode()
                    event = portal.rendered[key] = f"event: entry\ndata: {data}\n\n".encode()
                    while len(portal.rendered) > RENDERED:
                        portal.rendered.popitem(last=False)
                await response.write(event)
                last = max(last, row.seq)
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
        with contextlib.suppress(Exception):
            await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/live", stream)
