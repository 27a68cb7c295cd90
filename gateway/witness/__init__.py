"""Witnesses: countersignatures from outside the box (c2sp.org/tlog-witness, tlog-cosignature).

Its own room, because a witness is its own program: ``einblick witness serve`` runs on another
machine with its own key and state, and shares only the pure formats (``gateway.log.note``,
``gateway.log.merkle``) with the box. The gateway's side, the submitter, lives here too: it
speaks the same protocol, and reaches the box's log only through the runners ``app.py`` hands
it (import-linter keeps this room away from the message path, rights and operations).

    protocol.py    the add-checkpoint request and the witness's verdict, sans I/O   (both sides)
    state.py       the witness's SQLite state: latest cosigned checkpoint per origin, evidence
    directory.py   the witness's directory: name, key, followed logs
    server.py      the witness's HTTP service (aiohttp)
    client.py      one add-checkpoint request from the gateway, its answer bounded
    ledger.py      the gateway's log as the submitter sees it (gateway/log/cosignatures.py)
    submitter.py   the gateway's task per witness: submit, store, catch up, say how far behind
    status.py      the typed witness status (einblick status, metrics, TUI)
"""
