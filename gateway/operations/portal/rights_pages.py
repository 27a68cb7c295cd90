"""Who gets what, and the customer's rights over it: each grant in plain words with exactly the
actions the gateway offers for it (``GrantInfo.actions``: withdraw / object / restrict, give /
lift while a hold is in force), the person acting, and the gateway's answer — the signed receipt
with its DPV JSON-LD record, or "already in force, nothing written" with the earlier entry.

The portal decides nothing here: an action the gateway does not list for the grant is not found
(404), and what is said after an action is the gateway's reply, field by field.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from gateway.operations.control import ControlError, GatewayNotRunning
from gateway.operations.control_model import ConsentReply, GrantInfo
from gateway.operations.portal import actions
from gateway.operations.portal.server import LANG, PORTAL, Portal, session_of
from gateway.operations.portal.store import Session
from gateway.operations.portal.texts import t
from gateway.visible import neutralise

__all__ = ["add_routes"]

log = logging.getLogger("einblick.portal")

# The kinds of event a receipt names (its ``type``), each with its words in the TUI's catalog.
KINDS = (
    "consent_withdrawn",
    "consent_given",
    "objection",
    "objection_lifted",
    "restriction",
    "restriction_lifted",
)


def _session(request: web.Request) -> Session:
    return session_of(request)


def _seq(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


async def grants_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    lang = request[LANG]
    try:
        socket, customer = portal.config.control_socket, _session(request).customer
        grants = await portal.grants.get(socket, customer)
        error = None
    except GatewayNotRunning:
        grants, error = [], t(lang, "gateway_down")
    except ControlError as exc:
        grants, error = [], t(lang, "gateway_refused", error=str(exc))
    return portal.render(
        request,
        "grants.html",
        grants=grants,
        error=error,
        offered=offered,
        devices=await _devices(portal, _session(request).customer, grants),
    )


async def _devices(portal: Portal, customer: str, grants: list[GrantInfo]) -> dict[str, str]:
    """Each grant's devices as the customer's log shows them: by the names their own policy
    gives (made visible, as a row's are), the id where it gives none."""
    names = await portal.display_names(customer)
    return {g.id: ", ".join(neutralise(names.device(d) or d) for d in g.devices) for g in grants}


async def act(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    lang = request[LANG]
    action = request.match_info["action"]
    form = await request.post()
    by = form.get("by")
    by = by.strip()[:200] if isinstance(by, str) else ""
    socket = portal.config.control_socket
    try:
        grants = await actions.grants(socket, session.customer)
    except ControlError:
        return portal.render(request, "error.html", status=503, message=t(lang, "gateway_down"))
    grant = next((g for g in grants if g.id == request.match_info["grant"]), None)
    # Another customer's grant, an unknown one, or an action its basis does not give: not found.
    if grant is None or action not in allowed(grant):
        raise web.HTTPNotFound(text=t(lang, "not_found"))
    if not by:
        return portal.render(
            request,
            "grants.html",
            status=400,
            grants=grants,
            error=t(lang, "who_acts_missing"),
            offered=offered,
            devices=await _devices(portal, session.customer, grants),
        )
    try:
        reply = await actions.exercise(
            socket, action, session.customer, grant.id, f"{by} (portal: {session.login})"
        )
    except GatewayNotRunning:
        return portal.render(request, "error.html", status=503, message=t(lang, "gateway_down"))
    except ControlError as exc:  # e.g. held back by an objection while a restriction is asked
        return portal.render(
            request, "error.html", status=409, message=t(lang, "gateway_refused", error=str(exc))
        )
    finally:  # whatever the answer: the next "who gets what" asks the gateway again
        portal.grants.forget(session.customer)
    log.warning(
        "portal: %r asked %s on grant %s of customer %s: %s",
        session.login,
        action,
        grant.id,
        session.customer,
        f"recorded as entry {reply.entry_seq}" if reply.changed else "already in force",
    )
    if reply.changed and reply.receipt is not None:
        portal.store.keep_receipt(
            session.customer,
            session.login,
            reply.entry_seq,
            orjson.dumps(reply.receipt, option=orjson.OPT_INDENT_2).decode(),
            None if reply.record is None else orjson.dumps(reply.record).decode(),
        )
        raise web.HTTPSeeOther(f"/receipts/{reply.entry_seq}")
    said, seq = _unchanged(reply, lang)
    return portal.render(request, "unchanged.html", grant=grant, said=said, seq=seq)


def _unchanged(reply: ConsentReply, lang: str) -> tuple[str, int | None]:
    """The words for an action already in force, with the earlier entry when the gateway names
    one (``entry_seq`` > 0), else that the grant already applies as its policy says."""
    if reply.entry_seq <= 0:
        return t(lang, "receipt_nothing"), None
    what = t(lang, f"kind_{reply.kind}") if reply.kind in KINDS else reply.kind
    said = t(lang, "receipt_unchanged", what=what, seq=reply.entry_seq, by=reply.by, at=reply.at)
    return said, reply.entry_seq


async def receipt_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    seq = _seq(request.match_info["seq"])
    document = None if seq is None else portal.store.receipt(session.customer, seq)
    if seq is None or document is None:
        raise web.HTTPNotFound(text=t(request[LANG], "not_found"))
    if request.query.get("download"):
        return _attachment(document, "application/json", f"einblick-receipt-{seq}.json")
    record = portal.store.record(session.customer, seq)
    if request.query.get("record"):
        if record is None:
            raise web.HTTPNotFound(text=t(request[LANG], "not_found"))
        return _attachment(record, "application/ld+json", f"einblick-record-{seq}.jsonld")
    fields = orjson.loads(document).get("receipt", {})
    kind = fields.get("type")
    what = t(request[LANG], f"kind_{kind}") if kind in KINDS else str(kind or "")
    return portal.render(
        request,
        "receipt.html",
        seq=seq,
        what=what,
        fields=fields,
        document=document,
        has_record=record is not None,
    )


def _attachment(text: str, content_type: str, name: str) -> web.Response:
    return web.Response(
        body=text.encode(),
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# What releases a grant held back by each right: consent is given again, an objection or a
# restriction is lifted.
_RELEASE = {"consent": "give", "objection": "lift", "restriction": "lift"}


def offered(grant: GrantInfo) -> list[str]:
    """The actions the grants page shows for ``grant``: while nothing holds it back, the
    gateway's ``actions`` in its order (intended first); while a right holds it back, the one
    action that releases it."""
    release = _RELEASE.get(grant.held_by or "")
    if release is not None:
        return [release]
    return [a for a in grant.actions if a in actions.RIGHTS]


def allowed(grant: GrantInfo) -> set[str]:
    """The actions the portal passes on for ``grant``: what it shows, and the hold actions of
    its basis at any time, so a form sent twice (two tabs, a repeated click) reaches the
    gateway, which answers "already in force, nothing written" with the earlier entry."""
    return set(offered(grant)) | {a for a in grant.actions if a in actions.RIGHTS}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/grants", grants_page)
    app.router.add_post("/grants/{grant}/{action}", act)
    app.router.add_get("/receipts/{seq}", receipt_page)
