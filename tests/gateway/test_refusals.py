"""Refusals read from Mosquitto 2.0's log lines: who, what, how often; the parser is pure and its
memory bounded whatever a scan sends."""

from __future__ import annotations

from gateway.devices.refusals import MAX_ENTRIES, RefusalBook, WarningBudget


def _feed(book: RefusalBook, *bodies: str, now: float = 100.0) -> list[tuple[str, str, str]]:
    found = book.feed([f"1700000000: {body}" for body in bodies], now)
    return [(r.kind, r.who, r.detail) for r in found]


def test_a_denied_publish_names_the_devices_user_and_the_topic() -> None:
    book = RefusalBook()
    found = _feed(
        book,
        "New connection from 10.0.0.5:51234 on port 1883.",
        "New client connected from 10.0.0.5:51234 as baeckerei-schmidt.oven-1 "
        "(p2, c1, k60, u'baeckerei-schmidt.oven-1').",
        "Denied PUBLISH from baeckerei-schmidt.oven-1 (d0, q1, r0, m3, "
        "'devices/other/oven-2/telemetry', ... (12 bytes))",
    )
    assert found == [
        ("denied_publish", "baeckerei-schmidt.oven-1", "devices/other/oven-2/telemetry")
    ]


def test_a_wrong_password_is_named_by_the_address_it_came_from() -> None:
    book = RefusalBook()
    lines = (
        "New connection from 192.168.1.44:40000 on port 1883.",
        "Sending CONNACK to 192.168.1.44 (0, 5)",
        "Client <unknown> disconnected, not authorised.",
    )
    assert _feed(book, *lines) == [("bad_credentials", "address 192.168.1.44", "")]
    _feed(book, *lines, now=130.0)
    (entry,) = book.entries()
    assert (entry.count, entry.first, entry.last) == (2, 100.0, 130.0)
    assert book.totals["bad_credentials"] == 2


def test_a_refused_certificate_is_named_by_the_latest_tls_connection() -> None:
    book = RefusalBook(tls_ports=[8883])
    found = _feed(
        book,
        "New connection from 192.168.1.45:40001 on port 8883.",
        "New connection from 192.168.1.46:40002 on port 1883.",
        "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed",
    )
    assert found == [("tls_refused", "address 192.168.1.45", "certificate verify failed")]


def test_a_certificate_refused_at_the_accept_is_named_by_its_own_address() -> None:
    # When the client's certificate is already there as Mosquitto's first SSL_accept runs, it
    # writes one line with the address and no "New connection" line (a race: one refusal in
    # four to one in twenty here).
    book = RefusalBook(tls_ports=[8883])
    found = _feed(
        book,
        "New connection from 192.168.1.45:40001 on port 8883.",
        "Client connection from 192.168.1.47 failed: "
        "error:0A000086:SSL routines::certificate verify failed.",
        "Client connection from ::1 failed: error:0A000126:SSL routines::unexpected eof while "
        "reading.",
        "Client connection from 10.0.0.8 failed: error:1417C086:SSL routines:"
        "tls_process_client_certificate:certificate verify failed.",  # OpenSSL 1.1's form
    )
    assert found == [
        ("tls_refused", "address 192.168.1.47", "certificate verify failed"),
        ("tls_refused", "address ::1", "unexpected eof while reading"),
        ("tls_refused", "address 10.0.0.8", "certificate verify failed"),
    ]
    assert book.totals["tls_refused"] == 3


def test_a_client_id_cannot_pass_for_a_refused_certificate_or_name_an_address() -> None:
    """Without a user name a client keeps the id it chose, and Mosquitto writes it into the
    CONNACK and refusal lines (as Mosquitto 2.0.11 logged these, its id is any text)."""
    book = RefusalBook(tls_ports=[8883])
    forged = (
        "connection from 203.0.113.9 failed: error:0A000086:SSL routines::certificate verify failed"
    )
    found = _feed(
        book,
        "New connection from 127.0.0.1:39753 on port 1883.",
        "Sending CONNACK to 9.9.9.9 (0, 5)",
        "Client 9.9.9.9 disconnected, not authorised.",
        "New connection from 127.0.0.1:47097 on port 1883.",
        f"Sending CONNACK to {forged} (0, 5)",
        f"Client {forged} disconnected, not authorised.",
        f"Client {forged} disconnected due to protocol error.",
        f"Client {forged} closed its connection.",
        "New connection from 127.0.0.1:47099 on port 1883.",
        "Sending CONNACK to <unknown> (0, 5)",  # an id of "<unknown>", no user name
        "Client <unknown> disconnected, not authorised.",
    )
    assert found == [("bad_credentials", "address 127.0.0.1", "")] * 3
    assert book.totals["tls_refused"] == 0


def test_a_replaced_session_and_dropped_messages_are_counted() -> None:
    book = RefusalBook()
    found = _feed(
        book,
        "New client connected from 10.0.0.5:1 as c.d (p2, c0, k60, u'c.d').",
        "New connection from 10.0.0.9:2 on port 1883.",
        "Client c.d already connected, closing old connection.",
        "Outgoing messages are being dropped for client einblick-gateway.",
    )
    assert found == [
        ("session_replaced", "c.d", "by 10.0.0.9"),
        ("queue_full", "einblick-gateway", ""),
    ]


def test_other_lines_count_nothing_and_a_scan_stays_bounded() -> None:
    book = RefusalBook()
    assert _feed(book, "Opening ipv4 listen socket on port 1883.", "no timestamp here") == []
    for i in range(MAX_ENTRIES + 50):
        _feed(
            book,
            f"New connection from 10.{i // 65536}.{i // 256 % 256}.{i % 256}:1 on port 1883.",
            "Client <unknown> disconnected, not authorised.",
            now=float(i),
        )
    assert len(book.entries()) == MAX_ENTRIES
    assert book.totals["bad_credentials"] == book.total == MAX_ENTRIES + 50
    assert book.entries()[0].last == float(MAX_ENTRIES + 49)  # the oldest were dropped


def test_the_warning_budget_writes_a_window_s_share_of_each_kind_and_sums_up_the_rest() -> None:
    budget = WarningBudget(per_window=2, window=60.0)
    assert budget.close() is None  # nothing held: nothing to say
    assert [budget.admit("bad_credentials", t) for t in (0.0, 1.0)] == [(None, True)] * 2
    assert budget.admit("bad_credentials", 2.0) == (None, False)
    # each kind has its own share: a flood of one does not hide another
    assert [budget.admit("session_replaced", t) for t in (3.0, 4.0, 59.9)] == [
        (None, True),
        (None, True),
        (None, False),
    ]
    assert budget.holding
    summary, write = budget.admit("bad_credentials", 60.0)  # the next window
    assert write
    assert summary == (
        "2 more refusals at the device broker within 60 s not written here "
        "(bad_credentials 1, session_replaced 1); `einblick status` counts every one"
    )
    assert not budget.holding
    assert budget.window_end == 120.0
