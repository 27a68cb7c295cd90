"""Refusals at the device-side broker, made visible to the installer.

Mosquitto refuses a wrong password, a certificate it does not trust (expired, revoked, signed by
another CA) and a PUBLISH outside the device's ACL, and tells only its log. The managed broker's
log lines reach ``RefusalBook.feed`` (see ``Mosquitto(on_log=…)``); the book counts refusals per
who and kind, and ``einblick status`` shows them:

    refusals at the device broker:
      denied_publish   baeckerei-schmidt.oven-1   3×, last 12 s ago: devices/other/oven-2/telemetry
      bad_credentials  address 192.168.1.44       1×, last 2 min ago
      tls_refused      address 192.168.1.45       2×, last 40 s ago: certificate verify failed

Two more kinds are not refusals of a login but of what a login did to others:

- ``session_replaced``: a login took over a connected client's session ("Client <id> already
  connected, closing old connection."). The managed broker makes every client id the username
  (``use_username_as_clientid``), so a device asking for the gateway's or another device's client
  id gets its own instead, and Mosquitto 2.0 logs nothing about the id it asked for: such an
  attempt is harmless and invisible. What remains and is counted is a second login with the same
  credentials while the first is connected: a cloned device, stolen credentials, or a device
  reconnecting before the broker noticed its old connection died. Who: the username whose
  session was replaced and the address of the new login.
- ``queue_full``: Mosquitto began dropping messages queued for a client ("Outgoing messages are
  being dropped for client <id>."), counted once per episode as Mosquitto logs it: for the
  gateway's session that means devices' acknowledged messages are being lost (raise
  ``broker.limits``).

Who is named as precisely as Mosquitto 2.0's log allows: a denied PUBLISH by the broker username
of the connected client; a refused CONNECT (wrong password, unknown user, no user name) by the
address it came from, because Mosquitto logs "Client <unknown> disconnected, not authorised."
without the user name (or, for a CONNECT without a user name, with the client id the client
chose: any text, never trusted as anything but a refused login).

A failed TLS handshake appears in one of two forms. Which one is a race: if the client's next
flight (its certificate, or the end of a connection that closed at once) is already there while
Mosquitto's first ``SSL_accept`` for the new connection runs, the accept fails and Mosquitto
writes "Client connection from <address> failed: <OpenSSL's error>." with the address and no
"New connection" line (one line per error in OpenSSL's queue); otherwise the handshake fails
later, and OpenSSL's first error line ("OpenSSL Error[0]: …") names no connection, so the refusal
is named by the address of the latest connection on a TLS port. Either form counts one refusal
per line counted, which assumes that a refused handshake leaves one OpenSSL error: it did for
every refused certificate measured (40 of 40 with Mosquitto 2.0.11 and OpenSSL 3). A connection
closed before its handshake (a port check, a scan) is counted as well, with OpenSSL 3's
"unexpected eof while reading" as its detail (OpenSSL 1.1 logs nothing for it): the gateway's
own start no longer makes one (gateway/devices/ports.py, ``listening``).

The parser is pure (lines in, counts out); the clock is passed in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Refusal", "RefusalBook", "WarningBudget"]

_BODY = re.compile(r"^[^ ]*: (?P<body>.*)$")
_NEW_CONNECTION = re.compile(r"^New connection from (?P<addr>\S+?):\d+ on port (?P<port>\d+)\.$")
_CONNECTED = re.compile(
    r"^New client connected from \S+ as (?P<id>\S+) \(.*?(?:u'(?P<user>[^']*)')?\)\.$"
)
# An IPv4 or IPv6 address as Mosquitto prints one, never a client id such as "<unknown>".
_ADDRESS = r"(?P<addr>[0-9A-Fa-f.:]+(?:%\w+)?)"
# Mosquitto names the client id here instead of the address where it kept one (no user name).
_CONNACK_REFUSED = re.compile(rf"^Sending CONNACK to {_ADDRESS} \(\d+, (?P<rc>[1-9]\d*)\)$")
_DENIED = re.compile(r"^Denied PUBLISH from (?P<id>\S+) \(d\d, q\d, r\d, m\d+, '(?P<topic>.*)', ")
# OpenSSL's error string: "error:0A000086:SSL routines::certificate verify failed" -> the reason.
_OPENSSL_WHY = r"(?:error:[0-9A-F]+:)?(?:[^:]*:){0,2}(?P<why>.*?)"
_OPENSSL = re.compile(rf"^OpenSSL Error\[0\]: {_OPENSSL_WHY}$")
# The accept form, to the letter: a client chooses the id in "Client <id> disconnected, …" and
# "Client <id> closed its connection.", and an id such as "connection from 203.0.113.9 failed:
# error:…" must not pass for it. OpenSSL's reasons are lowercase words ("certificate verify
# failed", "tlsv1 alert unknown ca"); Mosquitto's endings after a client id (loop.c) have a comma,
# a capital letter, "disconnected" or "closed its connection" (``_CLIENT_ENDINGS``).
_ACCEPT_FAILED = re.compile(
    rf"^Client connection from {_ADDRESS} failed: "
    r"error:[0-9A-F]{8}:[^:]*:[^:]*:(?P<why>[a-z0-9 /()_-]+)\.$"
)
_CLIENT_ENDINGS = ("disconnected", "closed its connection")
_NOT_AUTHORISED = " disconnected, not authorised."
_REPLACED = re.compile(r"^Client (?P<id>\S+) already connected, closing old connection\.$")
_DROPPING = re.compile(r"^Outgoing messages are being dropped for client (?P<id>\S+)\.$")
KINDS = ("bad_credentials", "tls_refused", "denied_publish", "session_replaced", "queue_full")

# How many distinct (kind, who) pairs are kept: a scan from many addresses must not grow memory.
MAX_ENTRIES = 1000


@dataclass(slots=True)
class Refusal:
    kind: str  # one of KINDS
    who: str  # a broker username, or "address <ip>"
    count: int
    first: float
    last: float
    detail: str = ""  # the topic of a denied PUBLISH, OpenSSL's reason

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "who": self.who,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "detail": self.detail,
        }


class RefusalBook:
    """Counts refusals from Mosquitto's log lines, per kind and who."""

    def __init__(self, tls_ports: Iterable[int] = ()) -> None:
        self.tls_ports = {str(p) for p in tls_ports}
        self._users: dict[str, str] = {}  # client id -> broker username
        self._last_address = ""  # of the latest "New connection"
        self._last_tls_address = ""
        # From "Sending CONNACK to <address> (0, 5)" just before a refusal: Mosquitto names
        # the client id there instead when the client gave one that it kept (no user name).
        self._refused_address = ""
        self._entries: dict[tuple[str, str], Refusal] = {}
        self.total = 0
        # Per kind, never evicted (unlike the entries): what the metrics export as counters.
        self.totals: dict[str, int] = dict.fromkeys(KINDS, 0)

    def feed(self, lines: Iterable[str], now: float) -> list[Refusal]:
        """Read log lines; returns the refusals they recorded, in order."""
        found: list[Refusal] = []
        for line in lines:
            m = _BODY.match(line)
            if m is None:
                continue
            body = m.group("body").rstrip()
            refusal = self._line(body, now)
            if refusal is not None:
                found.append(refusal)
        return found

    def _line(self, body: str, now: float) -> Refusal | None:
        if body.startswith("Denied PUBLISH"):
            m = _DENIED.match(body)
            if m is None:
                return None
            client = m.group("id")
            who = self._users.get(client, f"client {client}")
            return self._record("denied_publish", who, m.group("topic"), now)
        if body.startswith("New connection from"):
            m = _NEW_CONNECTION.match(body)
            if m is not None:
                self._last_address = m.group("addr")
                if m.group("port") in self.tls_ports:
                    self._last_tls_address = m.group("addr")
            return None
        if body.startswith("New client connected"):
            m = _CONNECTED.match(body)
            if m is not None and m.group("user") is not None:
                if len(self._users) > 10 * MAX_ENTRIES:
                    self._users.clear()
                self._users[m.group("id")] = m.group("user")
            return None
        if body.startswith("Sending CONNACK"):
            m = _CONNACK_REFUSED.match(body)
            if m is not None:
                self._refused_address = m.group("addr")
            return None
        if body.endswith("already connected, closing old connection."):
            m = _REPLACED.match(body)
            if m is not None:
                client = m.group("id")
                who = self._users.get(client, client)
                return self._record("session_replaced", who, f"by {self._last_address}", now)
            return None
        if body.startswith("Outgoing messages are being dropped"):
            m = _DROPPING.match(body)
            if m is not None:
                client = m.group("id")
                return self._record("queue_full", self._users.get(client, client), "", now)
            return None
        if body.startswith("Client ") and body.endswith(_NOT_AUTHORISED):
            # "Client <unknown> …": the CONNACK line before it named the address. Otherwise the
            # client sent no user name, and both lines show the client id it chose: any text
            # ("9.9.9.9"), so the address is that of the latest connection instead.
            unknown = body == f"Client <unknown>{_NOT_AUTHORISED}"
            address = (self._refused_address if unknown else "") or self._last_address or "?"
            self._refused_address = ""
            return self._record("bad_credentials", f"address {address}", "", now)
        if body.startswith("Client connection from "):
            m = _ACCEPT_FAILED.match(body)
            if m is None or any(ending in m.group("why") for ending in _CLIENT_ENDINGS):
                return None
            return self._record("tls_refused", f"address {m.group('addr')}", m.group("why"), now)
        if body.startswith("OpenSSL Error[0]"):
            m = _OPENSSL.match(body)
            why = m.group("why") if m else body
            address = self._last_tls_address or self._last_address or "?"
            return self._record("tls_refused", f"address {address}", why, now)
        return None

    def _record(self, kind: str, who: str, detail: str, now: float) -> Refusal | None:
        self.total += 1
        self.totals[kind] = self.totals.get(kind, 0) + 1
        key = (kind, who)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= MAX_ENTRIES:
                oldest = min(self._entries, key=lambda k: self._entries[k].last)
                del self._entries[oldest]
            entry = self._entries[key] = Refusal(kind, who, 0, now, now, detail)
        entry.count += 1
        entry.last = now
        entry.detail = detail or entry.detail
        return entry

    def entries(self) -> list[Refusal]:
        """Most recent first."""
        return sorted(self._entries.values(), key=lambda r: r.last, reverse=True)

    def status(self) -> list[dict[str, object]]:
        return [r.as_dict() for r in self.entries()]


# Refusals of each kind the gateway writes to its own log per window.
WARNINGS_PER_WINDOW = 20
WARNING_WINDOW_S = 60.0


class WarningBudget:
    """Which refusals the gateway writes to its own log, as lines apart.

    Every refusal is counted in the book; a line is written for the first ``per_window`` of
    each kind in a window of ``window`` seconds (which starts at a refusal), and the rest are
    summed up in one line as the window ends. A client failing to log in a thousand times a
    second would otherwise write a thousand lines a second: under systemd, journald then drops
    every line of the service for the rest of its rate-limit interval (``RateLimitBurst``), the
    gateway's own errors with them. A budget per kind, so that such a flood does not hide the
    rare refusals that matter most (``queue_full`` of the gateway's own session, a
    ``session_replaced``). The clock is passed in, as to the book."""

    def __init__(
        self, per_window: int = WARNINGS_PER_WINDOW, window: float = WARNING_WINDOW_S
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.window_end = float("-inf")
        self._written: Counter[str] = Counter()  # kind -> lines written this window
        self._held: Counter[str] = Counter()  # kind -> refusals not written this window

    def admit(self, kind: str, now: float) -> tuple[str | None, bool]:
        """(the summary of a window that is over, to write first; whether to write this one)."""
        summary = None
        if now >= self.window_end:
            summary = self.close()
            self.window_end = now + self.window
        if self._written[kind] < self.per_window:
            self._written[kind] += 1
            return summary, True
        self._held[kind] += 1
        return summary, False

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def close(self) -> str | None:
        """End the window: the line that sums up what it held back, if it held anything."""
        self.window_end = float("-inf")
        self._written.clear()
        if not self._held:
            return None
        held, self._held = self._held, Counter()
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(held.items()))
        total = held.total()
        refusals = "refusal" if total == 1 else "refusals"
        return (
            f"{total} more {refusals} at the device broker within {self.window:g} s not written "
            f"here ({kinds}); `einblick status` counts every one"
        )
