"""The stored ids: looked up once, inserted once, kept apart per subject, forgotten on erasure."""

from __future__ import annotations

from gateway.log.chain import keyed_source, source_commitment
from gateway.log.ids import StoredIds
from tests.log.conftest import Log, make_draft


def _count(log: Log, table: str) -> int:
    return int(log.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_an_atom_is_inserted_once_and_found_again_by_a_fresh_instance(log: Log) -> None:
    before = _count(log, "atoms")
    ids = StoredIds(log.conn)
    first = ids.atom("oven-7")
    assert ids.atom("oven-7") == first
    assert ids.atom("oven-8") != first
    assert _count(log, "atoms") == before + 2
    # a new instance (after a rollback the writer makes one) reads the stored id, adds nothing
    assert StoredIds(log.conn).atom("oven-7") == first
    assert _count(log, "atoms") == before + 2


def test_equal_bodies_share_a_row_and_carry_their_digest(log: Log) -> None:
    ids = StoredIds(log.conn)
    one, digest = ids.body(b'{"kind":"shared"}')
    assert ids.body(b'{"kind":"shared"}') == (one, digest)
    other, other_digest = ids.body(b'{"kind":"withheld"}')
    assert other != one and other_digest != digest
    assert StoredIds(log.conn).body(b'{"kind":"shared"}') == (one, digest)


def test_subject_keys_are_per_log_and_device_and_survive_a_new_instance(log: Log) -> None:
    ids = StoredIds(log.conn)
    key = ids.subject_key(1, 5)
    assert len(key) == 32
    assert ids.subject_key(1, 5) == key
    assert ids.subject_key(1, 6) != key
    assert ids.subject_key(2, 5) != key
    assert StoredIds(log.conn).subject_key(1, 5) == key


def test_topics_are_per_log_and_device(log: Log) -> None:
    ids = StoredIds(log.conn)
    topic = ids.topic(1, 5, "bakery/oven-1/telemetry")
    assert ids.topic(1, 5, "bakery/oven-1/telemetry") == topic
    assert ids.topic(1, 6, "bakery/oven-1/telemetry") != topic
    assert StoredIds(log.conn).topic(1, 5, "bakery/oven-1/telemetry") == topic


def test_the_names_document_is_stored_once_under_the_subjects_key(log: Log) -> None:
    ids = StoredIds(log.conn)
    before = _count(log, "names")
    draft = make_draft(0)
    commitment = ids.names(1, 5, draft)
    assert ids.names(1, 5, draft) == commitment
    assert _count(log, "names") == before + 1
    assert ids.names(1, 6, draft) != commitment  # another subject, another key


def test_forgetting_a_subject_drops_only_its_keys_and_every_cached_body_key(log: Log) -> None:
    ids = StoredIds(log.conn)
    erased, kept = ids.subject_key(1, 5), ids.subject_key(1, 6)
    ids.body_keys.put(("a",), (1, b"d"))
    # what gateway.log.forget does in the database
    log.conn.execute("DELETE FROM subject_keys WHERE chain_id = 1 AND device_id = 5")
    ids.forget_subject(1, 5)
    assert ids.body_keys.get(("a",)) is None
    assert ids.subject_key(1, 6) == kept
    assert ids.subject_key(1, 5) != erased  # a new key, not the destroyed one from memory


def test_forgetting_a_subject_drops_its_ready_hash_states_with_its_key(log: Log) -> None:
    # The writer hashes under ``keyed`` states, which hold the key: erasure must not leave them.
    ids = StoredIds(log.conn)
    erased_states, kept_states = ids.keyed(1, 5), ids.keyed(1, 6)
    assert ids.keyed(1, 5) is erased_states  # made once per subject
    erased = ids.subject_key(1, 5)
    log.conn.execute("DELETE FROM subject_keys WHERE chain_id = 1 AND device_id = 5")
    ids.forget_subject(1, 5)
    assert ids.keyed(1, 6) is kept_states
    fresh = ids.keyed(1, 5)
    assert fresh is not erased_states
    digest = bytes(32)
    assert keyed_source(fresh, digest) == source_commitment(ids.subject_key(1, 5), digest)
    assert keyed_source(fresh, digest) != source_commitment(erased, digest)


def test_forgotten_topics_are_looked_up_again(log: Log) -> None:
    ids = StoredIds(log.conn)
    topic = ids.topic(1, 5, "t")
    log.conn.execute("DELETE FROM topics WHERE id = ?", (topic,))
    ids.forget_topics()
    again = ids.topic(1, 5, "t")  # inserted again, not the deleted id from memory
    assert log.conn.execute("SELECT id FROM topics WHERE topic = 't'").fetchall() == [(again,)]
