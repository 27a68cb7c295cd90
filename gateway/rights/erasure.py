"""Forgetting: erase a customer's (or one device's) personal content, keep the proof, tell recipients.

One erasure, in one transaction on the writer's connection (``erase``, shared by the running
gateway's ``forget`` control op and by ``einblick forget`` on a stopped gateway):

- queued outbox payloads of the subject are deleted (earlier erasure notices stay queued);
- the log's content, topics and subject keys are deleted (``LogWriter.erase_subject``): entries,
  commitments and hashes stay, so every chain still verifies;
- a customer-level erasure destroys the customer's pseudonymisation keys;
- a signed ``erasure`` entry says what was erased, when and at whose request (de/en);
- one erasure notice per recipient is queued in the outbox, committed with the entry, so it goes
  out at QoS 1 over the recipient's upstream link and survives restarts. It names only the
  customer id, device id and time; it is signed like a receipt.

Afterwards the caller checkpoints the WAL into the database and truncates it (``scrub``).
Retained messages on the device broker are cleared by the running gateway before the transaction.

A recipient acknowledges by publishing to ``<topic_prefix>einblick/erasure-ack/<notice id>`` on its
own broker (retained, so an ack sent while the gateway is away still arrives); each forwarder
subscribes there, and the book of erasures (``gateway.rights.erasure_book``) stores the time in
``erasure_notices``; it also reads every erasure back and keeps what is still unacknowledged.

Its row and its notices are written through the book (``gateway.rights.erasure_book``), which
owns the ``erasures`` and ``erasure_notices`` tables.

Running an erasure (clearing retained messages first, on a running or a stopped gateway) is
``gateway.rights.forgetting``.
"""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from gateway.errors import GatewayError
from gateway.locale import join, tr, trn, when
from gateway.log.entry import us_from_at
from gateway.log.keys import Signer
from gateway.log.reader import Reader
from gateway.log.writer import LogWriter
from gateway.messages import outbox
from gateway.messages.outbox import OutboxRow
from gateway.messages.pseudonyms import Keyring, destroy_keys
from gateway.rights import consent_events
from gateway.rights.erasure_book import forget_requesters, record_erasure, record_notice
from gateway.rights.receipts import make_receipt

__all__ = [
    "ACK_TOPIC",
    "NOTICE_GRANT",
    "NOTICE_TOPIC",
    "ErasureDone",
    "ErasureError",
    "ErasureRequest",
    "Forgotten",
    "PendingCopy",
    "ack_filter",
    "erase",
    "notice_id_from_ack",
]

# The outbox's grant column for notices: not a policy grant, so the forwarder must not ask the
# policy whether it may still be sent (an erasure notice always may).
NOTICE_GRANT = "$erasure-notice"
NOTICE_TOPIC = "einblick/erasure/{customer}"
ACK_TOPIC = "einblick/erasure-ack/{notice}"
log = logging.getLogger(__name__)

_NOTICE_ID = re.compile(r"^[0-9a-f]{32}$")


class ErasureError(GatewayError):
    """An erasure request names nothing the gateway knows, or cannot be carried out."""


@dataclass(frozen=True, slots=True)
class PendingCopy:
    """A copy of the subject's personal data this erasure did not reach: the copy an earlier
    instance keeps after a handover until it cleans up (gateway/operations/old_copies.py), and
    why it is still there. It goes when that instance cleans up, at the latest at its next
    start; until then the erasure says so rather than claim it."""

    instance: str
    why: str


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    customer: str
    device: str | None
    requested_by: str
    at: datetime
    retained: int = 0  # retained messages already cleared on the device broker


@dataclass(slots=True)
class ErasureDone:
    """What one erasure did; ``notices`` are the queued rows to hand to the forwarders."""

    id: int
    entry_seq: int
    content: int
    queued: int
    keys: int
    retained: int
    recipients: list[str]
    notices: list[OutboxRow] = field(default_factory=list)
    queued_by_recipient: dict[str, int] = field(default_factory=dict)
    queued_bytes_by_recipient: dict[str, int] = field(default_factory=dict)  # payload bytes
    copies_pending: tuple[PendingCopy, ...] = ()
    # Recipients the log shows were sent something of the subject that are not configured here
    # (removed since): no notice can reach them; the entry and the answer say so.
    not_notified: tuple[str, ...] = ()

    def forgotten(self, *, scrubbed: bool, retained_pending: bool = False) -> Forgotten:
        """What the ``forget`` op answers about this erasure."""
        return Forgotten(
            erasure=self.id,
            entry_seq=self.entry_seq,
            content_erased=self.content,
            queued_erased=self.queued,
            keys_destroyed=self.keys,
            retained_cleared=self.retained,
            notified=tuple(self.recipients),
            scrubbed=scrubbed,
            retained_pending=retained_pending,
            copies_pending=self.copies_pending,
            not_notified=self.not_notified,
        )


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What one erasure did, as the ``forget`` op answers it (``ForgetReply`` reads these
    attributes; the names are the wire's)."""

    erasure: int  # the erasure's number
    entry_seq: int  # its signed log entry
    content_erased: int
    queued_erased: int
    keys_destroyed: int
    retained_cleared: int
    notified: tuple[str, ...]  # recipients sent a signed erasure notice
    scrubbed: bool  # the write-ahead log was emptied of the erased pages
    # On a stopped gateway's database: retained messages on its broker are cleared when it
    # runs again.
    retained_pending: bool = False
    # Copies on earlier instances of a handed-over customer not erased yet (named in the entry).
    copies_pending: tuple[PendingCopy, ...] = ()
    # Sent something of the subject before, not configured here now: not notified (ErasureDone).
    not_notified: tuple[str, ...] = ()


def ack_filter(topic_prefix: str) -> str:
    """The subscription on a recipient's broker that receives acknowledgements."""
    return topic_prefix + ACK_TOPIC.format(notice="+")


def notice_id_from_ack(topic_prefix: str, topic: str) -> str | None:
    """The notice id an acknowledgement topic names, or None if it is not one."""
    head = topic_prefix + ACK_TOPIC.format(notice="")
    if not topic.startswith(head):
        return None
    notice = topic[len(head) :]
    return notice if _NOTICE_ID.match(notice) else None


def _subject_counts(
    conn: sqlite3.Connection, customer: str, device: str | None
) -> tuple[int | None, int | None, int]:
    """(chain id, device atom id, entries with content) as the log holds them now (read on
    ``conn``, inside the erasure's transaction)."""
    reader = Reader.over(conn, Path("(the gateway's log)"))
    chain_id = reader.chain_id(customer)
    device_id = None if device is None else reader.atom_id(device)
    if chain_id is None or (device is not None and device_id is None):
        return chain_id, device_id, 0
    return chain_id, device_id, reader.held_content(chain_id, device_id)


def _recipients_of(
    conn: sqlite3.Connection, chain_id: int | None, device_id: int | None
) -> set[str]:
    """Recipients that were ever sent (or offered) anything of the subject, per the log."""
    if chain_id is None:
        return set()
    return Reader.over(conn, Path("(the gateway's log)")).recipients_sent(chain_id, device_id)


def _texts(
    request: ErasureRequest,
    content: int,
    queued: int,
    keys: int,
    recipients: Sequence[str],
    *,
    timezone: str,
    copies_pending: Sequence[PendingCopy] = (),
    not_notified: Sequence[str] = (),
) -> dict[str, str]:
    out = {}
    for lang in ("de", "en"):
        what = [trn(lang, "erasure.what.content", content)]
        if queued:
            what.append(trn(lang, "erasure.what.queued", queued))
        if keys:
            what.append(trn(lang, "erasure.what.keys", keys))
        if request.retained:
            what.append(trn(lang, "erasure.what.retained", request.retained))
        # "nothing had been passed on" only when the log shows nothing sent to anyone
        none = "erasure.recipients.none_here" if not_notified else "erasure.recipients.none"
        notified = join(lang, list(recipients)) if recipients else tr(lang, none)
        subject = (
            tr(lang, "erasure.subject.device", device=request.device)
            if request.device
            else tr(lang, "erasure.subject.customer", customer=request.customer)
        )
        out[lang] = tr(
            lang,
            "erasure.entry",
            by=request.requested_by,
            at=when(lang, request.at, timezone),
            subject=subject,
            what=join(lang, what),
            recipients=notified,
        )
        if not_notified:
            out[lang] += " " + tr(
                lang, "erasure.not_notified", recipients=join(lang, list(not_notified))
            )
        if copies_pending:
            # never "erased" while an earlier instance's copy still holds the content
            instances = join(lang, sorted({c.instance for c in copies_pending}))
            out[lang] += " " + tr(lang, "erasure.copies_pending", instances=instances)
    return out


def erase(
    conn: sqlite3.Connection,
    writer: LogWriter,
    keyring: Keyring | None,
    signer: Signer,
    request: ErasureRequest,
    *,
    instance: str,
    recipients: Mapping[str, str],
    policy_recipients: Sequence[str] = (),
    names: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    copies_pending: Sequence[PendingCopy] = (),
) -> ErasureDone:
    """Carry out ``request`` inside the caller's open transaction (never commits).

    ``recipients`` maps every configured recipient to its topic prefix; a notice goes to each
    recipient the log shows was sent something of the subject and to each named by the
    customer's policy (``policy_recipients``), if configured. ``names`` are the recipients'
    display names for the entry's text; ``timezone`` (the customer's policy's) the clock its date
    is given on. ``copies_pending``: copies on earlier instances this erasure could not reach
    (gateway/operations/old_copies.py); the entry names them.
    """
    customer, device = request.customer, request.device
    chain_id, device_id, content = _subject_counts(conn, customer, device)
    sent_to = _recipients_of(conn, chain_id, device_id)
    notified = sorted(r for r in sent_to | set(policy_recipients) if r in recipients)
    not_notified = tuple(sorted(r for r in sent_to if r not in recipients))
    # Queued payloads of the subject; earlier erasure notices are not personal content and
    # must still reach their recipients.
    sized = outbox.erase(conn, customer, device, keep_grant=NOTICE_GRANT)
    queued_by = {r: n for r, n, _ in sized}
    keys = 0
    if device is None:
        keys = (
            keyring.erase(conn, customer) if keyring is not None else destroy_keys(conn, customer)
        )
    if device is None:
        # The people named beside the customer's own entries (consent givers, earlier
        # requesters) go with the customer: the log's copies with its names documents, these
        # here now. The counts, times and grants stay: they restore consent state and say what
        # was done. The row for this erasure, inserted below, names its requester.
        consent_events.forget_names(conn, customer)
        forget_requesters(conn, customer)
    shown = [(names or {}).get(r, r) for r in notified]
    texts = _texts(
        request,
        content,
        sum(queued_by.values()),
        keys,
        shown,
        timezone=timezone,
        copies_pending=copies_pending,
        not_notified=not_notified,
    )
    subject = customer if device is None else f"{customer}/{device}"
    appended = writer.erase_subject(
        subject, request.at, request.requested_by, text_de=texts["de"], text_en=texts["en"]
    )
    erasure_id = record_erasure(
        conn,
        customer=customer,
        device=device,
        at_us=us_from_at(request.at),
        requested_by=request.requested_by,
        entry_seq=appended.seq,
        content=content,
        queued=sum(queued_by.values()),
        keys=keys,
        retained=request.retained,
    )
    done = ErasureDone(
        erasure_id,
        appended.seq,
        content,
        sum(queued_by.values()),
        keys,
        request.retained,
        notified,
        queued_by_recipient=queued_by,
        queued_bytes_by_recipient={str(r): int(b) for r, _, b in sized},
        copies_pending=tuple(copies_pending),
        not_notified=not_notified,
    )
    for recipient in notified:
        notice = secrets.token_hex(16)
        prefix = recipients[recipient]
        document = make_receipt(
            signer,
            {
                "type": "erasure_request",
                "notice": notice,
                "gateway": instance,
                "customer": customer,
                "device": device,
                "scope": "customer" if device is None else "device",
                "requested_at": request.at.isoformat(),
                "acknowledge_to": prefix + ACK_TOPIC.format(notice=notice),
            },
        )
        (row,) = outbox.insert(
            conn,
            [
                (
                    appended.seq,
                    recipient,
                    customer,
                    device or "",
                    NOTICE_GRANT,
                    prefix + NOTICE_TOPIC.format(customer=customer),
                    orjson.dumps(document),
                    us_from_at(request.at),
                )
            ],
        )
        record_notice(conn, notice, erasure_id, recipient, row.id)
        done.notices.append(row)
    return done
