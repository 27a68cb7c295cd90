"""The portal's HTTP(S) server: its state, the middlewares every request passes, and serving.

Every request passes, in order: the language (``?lang=`` then the cookie then Accept-Language),
the session (a cookie whose SHA-256 names a live session in ``portal.db``; none: only the login
and invitation pages and the static files answer, everything else redirects to the login), the
CSRF check on every POST (the session's token, or before login the token of a pre-session
cookie, in a form field), then the handler, then the security headers (a strict Content Security
Policy: our own script and style only, no frames, no inline code).

What a session reads comes from a log reader bound to its customer (``gateway.log.reader``,
``customer=``): the scope is enforced there, in SQL, not by these pages.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from importlib.resources import files
from typing import TypeVar
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from gateway.config import Config, PortalConfig
from gateway.devices.tls import TlsFiles
from gateway.errors import GatewayError
from gateway.log.reader import LogReader
from gateway.operations.portal.actions import GrantsCache
from gateway.operations.portal.credentials import new_token
from gateway.operations.portal.feed import Feeds
from gateway.operations.portal.names import DisplayNames, NameBook
from gateway.operations.portal.reports import Policies, ReportCache
from gateway.operations.portal.rows import RowCache
from gateway.operations.portal.store import PortalStore, Session
from gateway.operations.portal.texts import LANGS, choose_language, t
from policies.compiler import CompiledPolicy

__all__ = [
    "LANG",
    "PORTAL",
    "PRE_CSRF",
    "SESSION",
    "TOKEN",
    "AddressLimiter",
    "Portal",
    "language_switch",
    "open_portal",
    "session_of",
    "tls_context",
]

log = logging.getLogger("einblick.portal")
T = TypeVar("T")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What the middlewares leave on each request for the handlers: the language, the session (None
# before login), its cookie token, and the pre-session CSRF token of the login forms.
LANG = web.RequestKey("lang", str)
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
TOKEN: web.RequestKey[str | None] = web.RequestKey("token")
PRE_CSRF = web.RequestKey("pre_csrf", str)


def session_of(request: web.Request) -> Session:
    """The request's session; only public paths pass the middleware without one, so a page
    that needs one and finds none sends the browser to the login rather than failing."""
    session = request[SESSION]
    if session is None:
        raise web.HTTPSeeOther("/login")
    return session


PUBLIC = ("/login", "/invite/", "/static/")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class AddressLimiter:
    """Failed logins per client address in a sliding window, in memory and bounded: beyond
    ``limit`` a address is refused before any password is hashed (the per-account lockout in
    ``portal.db`` covers one account; this covers guessing across many)."""

    def __init__(self, limit: int = 30, window_s: float = 600.0, capacity: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.capacity = capacity
        self._seen: dict[str, deque[float]] = {}

    def blocked(self, address: str, now: float) -> bool:
        times = self._seen.get(address)
        while times and times[0] < now - self.window_s:
            times.popleft()
        return bool(times) and len(times) >= self.limit  # type: ignore[arg-type]

    def failed(self, address: str, now: float) -> None:
        if address not in self._seen and len(self._seen) >= self.capacity:
            self._seen.pop(next(iter(self._seen)))  # the oldest address seen goes first
        self._seen.setdefault(address, deque()).append(now)


@dataclass
class Portal:
    """What every handler needs: settings, the portal's store, templates, the readers."""

    config: Config
    settings: PortalConfig
    store: PortalStore
    tls: bool
    env: jinja2.Environment
    limiter: AddressLimiter = field(default_factory=AddressLimiter)
    readers: dict[str, LogReader] = field(default_factory=dict)
    live: int = 0
    book: NameBook | None = None  # display names, set by open_portal
    # One read of the log per customer for all their live streams, and each row rendered once
    # for all their streams and pages (the customer is in every key).
    feeds: Feeds = field(default_factory=Feeds)
    grants: GrantsCache = field(default_factory=GrantsCache)  # who gets what, per customer
    reports: ReportCache = field(default_factory=ReportCache)  # a report per change of a log
    policies: Policies = field(init=False)  # the policies the report states, per file change
    rows: RowCache = field(init=False)
    # scrypt takes ~16 MiB and ~50 ms per check: one at a time, so a burst of logins (or of
    # guesses) costs one core and 16 MiB, not a core and 16 MiB per request.
    hasher: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="einblick-portal-scrypt")
    )
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.rows = RowCache(self.env.get_template("row.html"))
        self.policies = Policies(self._compile_policies)

    def _compile_policies(self) -> list[CompiledPolicy]:
        """Every policy file compiled as the gateway compiles it, with the registry's devices."""
        from gateway.devices.registry import Registry  # noqa: PLC0415
        from gateway.messages.policyset import PolicySet  # noqa: PLC0415

        registry = Registry(self.config.data_path / "devices.json")
        found = PolicySet(
            self.config.policies_path, self.config.recipient_names(), registry.devices
        )
        return found.load_all()

    @property
    def session_cookie(self) -> str:
        # __Host-: the browser refuses it unless Secure, on this host only, for every path.
        return "__Host-einblick-session" if self.tls else "einblick-session"

    @property
    def csrf_cookie(self) -> str:
        return "__Host-einblick-csrf" if self.tls else "einblick-csrf"

    async def reader(self, customer: str) -> LogReader:
        """The log reader bound to ``customer`` (one per customer, shared by their sessions)."""
        async with self._lock:
            found = self.readers.get(customer)
            if found is None:
                found = await LogReader.open(self.config.database_path, customer=customer)
                self.readers[customer] = found
            return found

    def names(self, customer: str) -> DisplayNames:
        """The names ``customer``'s rows show (their own devices, the recipients)."""
        return DisplayNames() if self.book is None else self.book.names(customer)

    async def display_names(self, customer: str) -> DisplayNames:
        """``names`` off the event loop: a changed policy file is parsed again there."""
        return await asyncio.to_thread(self.names, customer)

    async def hashing(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` (a login or an invitation: each hashes a password) on the hasher."""
        return await asyncio.get_running_loop().run_in_executor(self.hasher, partial(fn, *args))

    async def close(self) -> None:
        self.hasher.shutdown(wait=False)
        for reader in self.readers.values():
            await reader.close()
        self.readers.clear()
        self.store.close()

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.tls,
            httponly=True,
            samesite="Strict",
        )

    def render(
        self, request: web.Request, template: str, status: int = 200, **ctx: object
    ) -> web.Response:
        lang = request[LANG]
        session: Session | None = request.get(SESSION)
        page = self.env.get_template(template).render(
            lang=lang,
            langs=LANGS,
            t=lambda key, **p: t(lang, key, **p),
            session=session,
            csrf=session.csrf if session else request.get(PRE_CSRF, ""),
            path=request.path,
            switch=language_switch(request),
            **ctx,
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def language_switch(request: web.Request) -> str:
    """Where the language links lead, up to ``lang=``: this page again with its query (a log's
    filters stay), or, for a page answering a form (a POST's address is no page one can fetch:
    405), the page the form was on."""
    if request.method in ("GET", "HEAD"):
        query = urlencode([(k, v) for k, v in request.query.items() if k != "lang"])
        return f"{request.path}?{query}&" if query else f"{request.path}?"
    section = request.path.split("/")[1]
    if section == "invite":  # the invitation's own page (its token is in the path)
        return f"{request.path}?"
    return f"/{section}?"


def templates() -> jinja2.Environment:
    root = files("gateway.operations.portal") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        # Everything a device or a policy author chose is text, never markup.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def address(request: web.Request) -> str:
    return request.remote or "?"


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if request.app[PORTAL].tls:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def language(request: web.Request, handler: Handler) -> web.StreamResponse:
    chosen = request.query.get("lang") or request.cookies.get("einblick-lang")
    request[LANG] = choose_language(chosen, request.headers.get("Accept-Language"))
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect keeps the choice too (``/?lang=en``)
        _keep_language(request, exc)
        raise
    _keep_language(request, response)
    return response


def _keep_language(request: web.Request, response: web.StreamResponse) -> None:
    if request.query.get("lang") in LANGS:
        response.set_cookie(
            "einblick-lang", request[LANG], max_age=365 * 86400, path="/", samesite="Strict"
        )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    token = request.cookies.get(portal.session_cookie)
    session = portal.store.session(token) if token else None
    request[SESSION] = session
    request[TOKEN] = token if session else None
    fresh_pre = None
    if session is None:
        if not request.path.startswith(PUBLIC):
            if request.method == "GET":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPForbidden(text="log in first")
        # A pre-session CSRF token for the login and invitation forms (double submit).
        pre = request.cookies.get(portal.csrf_cookie)
        if not pre or len(pre) > 100:
            pre = fresh_pre = new_token()
        request[PRE_CSRF] = pre
    if request.method not in ("GET", "HEAD"):
        expected = session.csrf if session else request[PRE_CSRF]
        form = await request.post()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
            log.warning(
                "portal: refused a %s to %s from %s without a valid CSRF token",
                request.method,
                request.path[:100],
                address(request),
            )
            return portal.render(
                request, "error.html", status=403, message=t(request[LANG], "csrf_refused")
            )
    response = await handler(request)
    if fresh_pre is not None:
        portal.set_cookie(response, portal.csrf_cookie, fresh_pre, 3600)
    return response


PORTAL = web.AppKey("portal", Portal)


def tls_context(config: Config, settings: PortalConfig) -> ssl.SSLContext | None:
    """None for plain HTTP (loopback only, checked by the configuration); otherwise the
    installer's certificate, or the listener certificate the box's CA issued."""
    if settings.plain_http:
        return None
    if settings.cert_file is not None and settings.key_file is not None:
        cert, key = config.path(settings.cert_file), config.path(settings.key_file)
    else:
        files_ = TlsFiles(config.data_path / "tls")
        cert, key = files_.server_cert, files_.server_key
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise GatewayError(
            f"portal: cannot use the TLS certificate {cert} with key {key} ({exc}); "
            "'einblick init --force' issues the box's certificate, or set portal.cert_file and "
            "portal.key_file to your own"
        ) from exc
    return context


def open_portal(config: Config) -> Portal:
    settings = config.portal or PortalConfig()
    store = PortalStore(
        config.portal_db,
        lock_after=settings.lock_after_failures,
        lock_for_s=settings.lock_minutes * 60.0,
        lock_window_s=settings.lock_minutes * 60.0,
    )
    book = NameBook(config.policies_path, config.recipient_names())
    return Portal(config, settings, store, not settings.plain_http, templates(), book=book)
