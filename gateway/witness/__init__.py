"""Witnesses: countersignatures from outside the box (c2sp.org/tlog-witness, tlog-cosignature).

Its own room, because a witness is its own program: ``einblick witness serve`` runs on another
machine with its own key and state, and shares only the pure formats (``gateway.log.note``,
``gateway.log.merkle``) with the box. The gateway's side, the submitter, lives here too: it
speaks the same protocol and is the only part that runs on the box.

    protocol.py    the add-checkpoint request and the witness's verdict, sans I/O
    state.py       the witness's SQLite state: latest cosigned checkpoint per origin, evidence
    directory.py   the witness's directory: name, key, followed logs
    server.py      the HTTP service (aiohttp)
"""
