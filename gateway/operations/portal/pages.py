"""The customer's pages: their log (filter, find, an entry's explanation and proof), the access
report, the signed bundle and the checkpoint to keep with how to verify both at home, and an
erasure request. Who gets what and the rights over it: ``rights_pages``.

The customer is always the session's; an id in a URL is looked up through the reader bound to
that customer (or ``portal.db``'s rows of that customer), so another customer's entry, receipt
or grant is simply not found (404), never a different error that would say it exists.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from gateway.errors import LogError
from gateway.log.bundle import export_customer
from gateway.log.checkpoints import latest_note
from gateway.log.keys import load_public_key
from gateway.log.legacy import EntryProof
from gateway.log.reader import LogReader
from gateway.log.results import CheckpointInfo, EntryDetail, EntryRow
from gateway.operations.portal.pending import carried_out, newest_erasure, open_requests
from gateway.operations.portal.reports import ReportState, report_state
from gateway.operations.portal.rows import row_view, when
from gateway.operations.portal.server import LANG, PORTAL, Portal, session_of
from gateway.operations.portal.store import ErasureRequest, Session
from gateway.operations.portal.texts import t
from gateway.rights.report_model import Report
from gateway.visible import neutralise
from policies.compiler import CompiledPolicy

__all__ = ["add_routes", "log_filters", "page"]

log = logging.getLogger("einblick.portal")

PAGE = 100
OUTCOMES = ("shared", "altered", "withheld")
_FILTERS = ("device", "recipient", "outcome", "q")


def _session(request: web.Request) -> Session:
    return session_of(request)


def log_filters(request: web.Request) -> dict[str, str]:
    """The log's filters from the query string: bounded, and only the ones we know."""
    found = {}
    for name in _FILTERS:
        value = request.query.get(name, "").strip()[:200]
        if value and (name != "outcome" or value in OUTCOMES):
            found[name] = value
    return found


async def page(
    reader: LogReader,
    filters: dict[str, str],
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE,
) -> list[EntryRow]:
    """A page of the bound customer's entries passing the page's filters."""
    return await reader.page(
        before=before,
        after=after,
        limit=limit,
        device=filters.get("device"),
        recipient=filters.get("recipient"),
        outcome=filters.get("outcome"),
        text=filters.get("q"),
    )


async def log_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    lang = request[LANG]
    reader = await portal.reader(session.customer)
    filters = log_filters(request)
    find = request.query.get("find", "").strip()[:200] or None
    before = _int(request.query.get("before"))
    rows = await page(reader, filters, before=before)
    # Where the live stream takes over: on the newest page, its newest row (the same read, so a
    # row written meanwhile is streamed, neither lost nor shown twice; an empty page: every row
    # that passes is new); on an older page, the log's newest entry.
    if before is None:
        latest = rows[0].seq if rows else 0
    else:
        latest = await reader.latest_seq()
    names = await portal.display_names(session.customer)
    rendered = [portal.rows.html(session.customer, r, lang, find, names) for r in rows]
    return portal.render(
        request,
        "log.html",
        rows=[Markup(html) for html, _ in rendered],  # rendered (and escaped) by row.html
        filters=filters,
        find=find or "",
        hits=sum(1 for _, hit in rendered if hit),
        latest=latest,
        older=rows[-1].seq if len(rows) == PAGE else None,
        outcomes=OUTCOMES,
        query=urlencode(filters),
    )


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


async def entry_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    lang = request[LANG]
    seq = _int(request.match_info["seq"])
    reader = await portal.reader(session.customer)
    found = None if seq is None else await reader.run(_detail, reader, seq)
    if found is None:
        raise web.HTTPNotFound(text=t(lang, "not_found"))
    detail, proof = found
    row = detail.row
    content = None
    if detail.content is not None:
        content = neutralise(detail.content.decode("utf-8", "backslashreplace"), lines=True)
    cp = proof.checkpoint
    if cp is None:
        status, state = t(lang, "d_checkpoint_none"), "pending"
    elif proof.signature_valid and proof.head_matches and proof.link_valid:
        at = datetime.fromtimestamp(cp.at / 1_000_000, UTC)
        status, state = t(lang, "d_checkpoint_ok", size=cp.size, at=when(at)), "ok"
    else:
        status, state = t(lang, "d_checkpoint_bad"), "bad"
    return portal.render(
        request,
        "entry.html",
        row=row_view(row, lang, None, await portal.display_names(session.customer)),
        detail=detail,
        purpose=detail.purpose.get(lang, ""),
        basis=t(lang, f"lb_{detail.legal_basis}") if detail.legal_basis else "—",
        altered=[f"{p} ({how}{' ' + d if d else ''})" for p, how, d in detail.altered],
        content=content,
        erased=detail.commitment is not None and detail.content is None,
        link_ok=proof.link_valid,
        proof_status=status,
        proof_state=state,
        entry_hash=detail.entry_hash.hex(),
    )


def _detail(reader: LogReader, seq: int) -> tuple[EntryDetail, EntryProof] | None:
    """On the reader's thread: the entry (None: absent or another customer's) and its proof
    from the one verifier (``gateway.log.verify`` through ``Reader.proof``)."""
    facts = reader.sync.entry(seq)
    if facts is None:
        return None
    try:
        detail = reader.sync.detail(seq)
    except LogError:
        return None
    return detail, reader.sync.proof(facts)


def _public_key_path(portal: Portal) -> Path | None:
    key = portal.config.signing_key_path
    return next((p for p in (key.with_suffix(".pub"), Path(f"{key}.pub")) if p.exists()), None)


async def report(request: web.Request) -> web.StreamResponse:
    """The access report (Art. 15) as a page, or its JSON export (Art. 20): built once per
    change of the customer's log (``reports``), never older than the log the request saw."""
    from gateway.rights.report import build_report  # noqa: PLC0415
    from gateway.rights.report_text import document  # noqa: PLC0415

    portal: Portal = request.app[PORTAL]
    session = _session(request)
    lang = request[LANG]
    customer, db = session.customer, portal.config.database_path
    policy = await asyncio.to_thread(_policy, portal, customer)
    key_path = _public_key_path(portal)
    key = load_public_key(key_path) if key_path else None

    async def state() -> ReportState:
        return await asyncio.to_thread(report_state, db, customer, policy, key)

    async def build() -> Report:
        return await asyncio.to_thread(
            build_report,
            db,
            customer,
            policy=policy,
            recipients=portal.config.recipient_names(),
            public_key=key,
            now=datetime.now(UTC),
            trees=portal.reports.trees,
            tallies=portal.reports.tallies,
        )

    try:
        built = await portal.reports.get(customer, state, build)
    except LogError:
        return portal.render(request, "error.html", status=404, message=t(lang, "report_empty"))
    if request.path.endswith(".json"):
        return web.Response(
            text=built.json,
            content_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="einblick-report.json"'},
        )
    data = built.data
    return portal.render(
        request,
        "report.html",
        doc=document(data, lang, portal=True),
        ok=data["verification"]["ok"],
    )


def _policy(portal: Portal, customer: str) -> CompiledPolicy | None:
    """The customer's policy as the gateway would compile it now (with the devices the
    registry holds), kept until a policy file or the registry changes (``Policies``)."""
    config = portal.config
    files = [*sorted(config.policies_path.glob("*.yaml")), config.data_path / "devices.json"]
    return portal.policies.get(customer, files)


def _file_stem(customer: str) -> str:
    # Customer ids are the installer's; a file name still gets only these characters.
    return "einblick-" + re.sub(r"[^A-Za-z0-9._-]", "_", customer)[:64]


async def download_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    reader = await portal.reader(session.customer)
    checkpoints = await reader.checkpoints(customer=session.customer, limit=1)
    stem = _file_stem(session.customer)
    return portal.render(
        request,
        "download.html",
        checkpoint=checkpoints[0] if checkpoints else None,
        head=checkpoints[0].head.hex() if checkpoints else None,
        has_key=_public_key_path(portal) is not None,
        bundle_name=f"{stem}.bundle",
        checkpoint_name=_checkpoint_file(session.customer, checkpoints),
    )


def _checkpoint_file(customer: str, checkpoints: list[CheckpointInfo]) -> str:
    """The checkpoint file's name, the same on the download page's ``--since`` command and on
    the file itself: by the entries it covers in the customer's log as the page states them
    (in a log upgraded from 0.1.0 the note's own tree size leaves out the sealed chain)."""
    size = checkpoints[0].size if checkpoints else 0
    return f"{_file_stem(customer)}-{size}.checkpoint"


async def bundle(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    try:
        data = await asyncio.to_thread(
            export_customer, portal.config.database_path, session.customer
        )
    except LogError:
        raise web.HTTPNotFound(text=t(request[LANG], "report_empty")) from None
    return web.Response(
        body=data,
        content_type="application/x-ndjson",
        headers={
            "Content-Disposition": f'attachment; filename="{_file_stem(session.customer)}.bundle"'
        },
    )


async def checkpoint(request: web.Request) -> web.StreamResponse:
    """The customer's newest signed checkpoint (a C2SP signed note with any witness
    cosignatures), the small file kept at home for ``einblick verify --since``."""
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    note = await asyncio.to_thread(_latest_note, portal.config.database_path, session.customer)
    if note is None:
        raise web.HTTPNotFound(text=t(request[LANG], "not_found"))
    reader = await portal.reader(session.customer)
    checkpoints = await reader.checkpoints(customer=session.customer, limit=1)
    return web.Response(
        text=note,
        content_type="text/plain",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{_checkpoint_file(session.customer, checkpoints)}"'
            )
        },
    )


def _latest_note(path: Path, customer: str) -> str | None:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return latest_note(conn, customer)
    finally:
        conn.close()


async def public_key(request: web.Request) -> web.StreamResponse:
    path = _public_key_path(request.app[PORTAL])
    if path is None:
        raise web.HTTPNotFound(text=t(request[LANG], "not_found"))
    return web.Response(
        body=path.read_bytes(),
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="einblick-gateway.pub"'},
    )


async def erasure_page(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    return portal.render(
        request, "erasure.html", requests=await _requests(portal, session), error=None
    )


@dataclass(frozen=True, slots=True)
class RequestView:
    """One of the customer's erasure requests as ``erasure.html`` says it (``erasure_<state>``)."""

    at: str  # when it was asked, UTC
    by: str  # the name the customer gave
    state: Literal["open", "done", "unknown"]  # unknown: the gateway is not answering


async def _requests(portal: Portal, session: Session) -> list[RequestView]:
    """The customer's requests, each with what is known of it: open, carried out, or (the
    gateway not answering) nothing said beyond the request itself."""
    mine = portal.store.erasure_requests(session.customer)
    # Only this customer's: the answer looks at old copies per customer, as of now.
    done = await carried_out(portal.config.control_socket, session.customer) if mine else []
    waiting = None if done is None else {r.id for r in open_requests(mine, done)}

    def state(r: ErasureRequest) -> Literal["open", "done", "unknown"]:
        if waiting is None:
            return "unknown"
        return "open" if r.id in waiting else "done"

    return [RequestView(at=_stamp(r.at), by=r.by, state=state(r)) for r in mine]


def _stamp(at: float) -> str:
    return when(datetime.fromtimestamp(at, UTC))


async def erasure(request: web.Request) -> web.StreamResponse:
    portal: Portal = request.app[PORTAL]
    session = _session(request)
    form = await request.post()
    by = form.get("by")
    by = by.strip()[:200] if isinstance(by, str) else ""
    if not by or form.get("confirm") != "yes":
        return portal.render(
            request,
            "erasure.html",
            status=400,
            requests=await _requests(portal, session),
            error=t(request[LANG], "erasure_incomplete"),
        )
    # Which erasures came before it, by number: the clocks may disagree (pending.py).
    after = await newest_erasure(portal.config.control_socket, session.customer)
    number = portal.store.request_erasure(session.customer, session.login, by, None, after=after)
    log.warning(
        "portal: erasure request %d from %r for customer %s (the installer runs einblick forget)",
        number,
        session.login,
        session.customer,
    )
    raise web.HTTPSeeOther("/erasure?sent=1")


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/log")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/log", log_page)
    app.router.add_get("/entry/{seq}", entry_page)
    app.router.add_get("/report", report)
    app.router.add_get("/report.json", report)
    app.router.add_get("/download", download_page)
    app.router.add_get("/bundle", bundle)
    app.router.add_get("/checkpoint", checkpoint)
    app.router.add_get("/key", public_key)
    app.router.add_get("/erasure", erasure_page)
    app.router.add_post("/erasure", erasure)
