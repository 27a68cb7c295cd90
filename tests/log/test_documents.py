"""The typed documents of the log (gateway/log/documents.py) are the shapes the writer really
stores: every body and every names document of a real log, written by the log's own writer with
a real key, has each key its type requires and no key the type does not know."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from gateway.log.documents import BodyV2, NamesDocument, ShownBody
from gateway.log.keys import Signer
from gateway.log.reader import Reader
from tests.log.conftest import Log, make_draft


def _keys_fit(doc: dict[str, object], typed: type) -> tuple[set[str], set[str]]:
    """(required keys missing, keys the type does not know)."""
    # The module postpones its annotations, so TypedDict cannot see NotRequired itself (its
    # __required_keys__ then lists every key): read the markers from the annotations' text.
    annotations = typed.__annotations__
    required = {k for k, v in annotations.items() if "NotRequired" not in str(v)}
    return required - set(doc), set(doc) - set(annotations)


def test_every_stored_body_and_names_document_has_its_typed_shape(tmp_path: Path) -> None:
    log = Log(tmp_path / "log.db", Signer.generate())
    try:
        drafts = [make_draft(i) for i in range(12)]  # shared and withheld, three devices
        drafts += [make_draft(20, customer="metallbau-huber", reason_params={"limit": "5"})]
        log.write(drafts)
    finally:
        log.close()
    conn = sqlite3.connect(tmp_path / "log.db")
    try:
        bodies = [orjson.loads(doc) for (doc,) in conn.execute("SELECT doc FROM bodies")]
        names = [orjson.loads(doc) for (doc,) in conn.execute("SELECT doc FROM names")]
    finally:
        conn.close()
    decisions = [b for b in bodies if b.get("kind") == "decision"]
    assert len(decisions) >= 4 and names  # shared and withheld bodies of two customers
    for body in bodies:
        assert body["v"] == 2
        assert _keys_fit(body, BodyV2) == (set(), set()), body
    for doc in names:
        assert _keys_fit(doc, NamesDocument) == (set(), set()), doc
    assert any("reason_params" in d for d in [*bodies, *names])


def test_every_body_the_reader_shows_has_the_shown_shape(tmp_path: Path) -> None:
    # What the report and the views index by key (gateway/log/results.py Body.doc): a version 2
    # body joined with its names document has each key ShownBody requires and none it lacks.
    log = Log(tmp_path / "log.db", Signer.generate())
    try:
        log.write([make_draft(i) for i in range(6)])
        log.write([make_draft(20, customer="metallbau-huber", reason_params={"limit": "5"})])
    finally:
        log.close()
    reader = Reader.open(tmp_path / "log.db")
    try:
        bodies = reader.bodies()
    finally:
        reader.close()
    assert len(bodies) >= 3
    for body in bodies:
        assert _keys_fit(dict(body.doc), ShownBody) == (set(), set()), body.doc
        assert body.doc["text_de"] == f"{body.doc.get('names')}/de"
    assert any(body.doc["reason_params"] == {"limit": "5"} for body in bodies)
