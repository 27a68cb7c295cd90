"""Getting in and out: the login (rate-limited per address, locked per account), the one-time
invitation where a customer sets their password, logging out, and setting up TOTP.

Failed logins and lockouts are logged with the login name (made visible, cut to 64 characters)
and the address, never with what was typed as the password or code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import web

from gateway.operations.portal.credentials import base32, check_totp, new_totp_secret, totp_uri
from gateway.operations.portal.server import (
    LANG,
    PORTAL,
    SESSION,
    TOKEN,
    Portal,
    address,
    session_of,
)
from gateway.operations.portal.store import PortalError
from gateway.operations.portal.texts import t
from gateway.visible import neutralise

__all__ = ["add_routes"]

log = logging.getLogger("einblick.portal")


def _field(form: Mapping[str, object], name: str, limit: int = 1024) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _shown(login: str) -> str:
    return neutralise(login[:64])


async def login_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    if request[SESSION] is not None:
        raise web.HTTPSeeOther("/log")
    return portal.render(request, "login.html", error=None)


async def login(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    lang = request[LANG]
    form = await request.post()
    name = _field(form, "login", 200).strip().lower()
    password = _field(form, "password")
    code = _field(form, "code", 20)
    now = time.time()
    where = address(request)
    if portal.limiter.blocked(where, now):
        log.warning("portal: login refused for %s: too many failed logins from there", where)
        return portal.render(request, "login.html", status=429, error=t(lang, "login_slow_down"))
    outcome = await portal.hashing(
        portal.store.login, name, password, code, portal.settings.session_minutes * 60.0
    )
    if outcome.token is None or outcome.session is None:
        portal.limiter.failed(where, now)
        if outcome.locked_until is not None:
            log.warning(
                "portal: login %r locked after repeated failures (from %s)", _shown(name), where
            )
            return portal.render(request, "login.html", status=403, error=t(lang, "login_locked"))
        log.warning("portal: failed login for %r from %s", _shown(name), where)
        return portal.render(request, "login.html", status=403, error=t(lang, "login_failed"))
    log.info(
        "portal: %r logged in (customer %s) from %s", _shown(name), outcome.session.customer, where
    )
    response = web.HTTPSeeOther("/log")
    portal.set_cookie(
        response, portal.session_cookie, outcome.token, portal.settings.session_minutes * 60
    )
    response.del_cookie(portal.csrf_cookie, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    token = request[TOKEN]
    if token:
        portal.store.logout(token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(portal.session_cookie, path="/")
    raise response


async def invite_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    found = portal.store.invitation(request.match_info["token"])
    if found is None:
        return portal.render(
            request, "error.html", status=404, message=t(request[LANG], "invite_gone")
        )
    return portal.render(request, "invite.html", name=found[1], error=None)


async def invite(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    lang = request[LANG]
    token = request.match_info["token"]
    found = portal.store.invitation(token)
    if found is None:
        return portal.render(request, "error.html", status=404, message=t(lang, "invite_gone"))
    form = await request.post()
    password = _field(form, "password", 2048)
    if password != _field(form, "password2", 2048):
        return portal.render(
            request, "invite.html", status=400, name=found[1], error=t(lang, "invite_mismatch")
        )
    try:
        account = await portal.hashing(
            portal.store.accept, token, _field(form, "login", 200).strip().lower(), password
        )
    except PortalError as exc:
        return portal.render(request, "invite.html", status=400, name=found[1], error=str(exc))
    log.warning(
        "portal: invitation used, account %r created for customer %s",
        account.login,
        account.customer,
    )
    raise web.HTTPSeeOther("/login?welcome=1")


async def account_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = session_of(request)
    account = next(a for a in portal.store.accounts(session.customer) if a.login == session.login)
    return portal.render(
        request, "account.html", account=account, secret=None, uri=None, error=None
    )


async def totp_start(request: web.Request) -> web.StreamResponse:
    """Show a new secret; it is stored only once a code from it is typed back (below)."""
    portal: Portal = request.app[PORTAL]
    session = session_of(request)
    account = next(a for a in portal.store.accounts(session.customer) if a.login == session.login)
    secret = new_totp_secret()
    return portal.render(
        request,
        "account.html",
        account=account,
        secret=base32(secret),
        raw=secret.hex(),
        uri=totp_uri(secret, account.login, "Einblick"),
        error=None,
    )


async def totp_confirm(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = session_of(request)
    form = await request.post()
    try:
        secret = bytes.fromhex(_field(form, "raw", 80))
    except ValueError:
        secret = b""
    account = next(a for a in portal.store.accounts(session.customer) if a.login == session.login)
    if len(secret) != 20 or not check_totp(secret, _field(form, "code", 20), time.time()):
        return portal.render(
            request,
            "account.html",
            status=400,
            account=account,
            secret=base32(secret) if len(secret) == 20 else None,
            raw=secret.hex(),
            uri=totp_uri(secret, account.login, "Einblick") if len(secret) == 20 else None,
            error=t(request[LANG], "totp_wrong"),
        )
    portal.store.set_totp(session.login, secret)
    log.warning("portal: %r turned on two-factor login", session.login)
    raise web.HTTPSeeOther("/account")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/invite/{token}", invite_page)
    app.router.add_post("/invite/{token}", invite)
    app.router.add_get("/account", account_page)
    app.router.add_post("/account/totp", totp_start)
    app.router.add_post("/account/totp/confirm", totp_confirm)
