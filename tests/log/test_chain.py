"""The 0.1.0 log format's hashes (gateway/log/chain.py), still what every legacy log and bundle is
checked against: each function recomputed here from the formula in the module's text with
hashlib alone, and the properties the format rests on (domain separation, None differs from
empty, a length prefix so topic and content cannot trade bytes)."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from gateway.log.chain import (
    body_digest,
    canonical_json,
    checkpoint_message,
    commitment_of_tail,
    content_commitment,
    content_tail,
    entry_hash,
    genesis_hash,
    keyed,
    keyed_salt,
    keyed_source,
    rotation_message,
    salt_for,
    source_commitment,
    text_digest,
)

KEY = bytes(range(32))


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_text_body_and_genesis_as_the_spec_writes_them() -> None:
    assert text_digest("Ofen 1: geteilt") == sha(b"einblick/text/v1\x00Ofen 1: geteilt")
    assert body_digest(b'{"a":1}') == sha(b'einblick/body/v1\x00{"a":1}')
    assert genesis_hash("edge-07", "baeckerei") == sha(
        b"einblick/genesis/v1\x00edge-07\x00baeckerei"
    )
    # Sorted keys, no spaces: one byte string per value, whoever serialises it.
    assert canonical_json({"b": 1, "a": [1, "ü"]}) == '{"a":[1,"ü"],"b":1}'.encode()


def test_salt_and_source_are_keyed_blake2b() -> None:
    expected = hashlib.blake2b(
        b"baeckerei\x00" + struct.pack(">Q", 7), key=KEY, digest_size=32, person=b"einblick/salt/v1"
    ).digest()
    assert salt_for(KEY, "baeckerei", 7) == expected
    assert len({salt_for(KEY, "baeckerei", 8), salt_for(KEY, "baeckereI", 7), expected}) == 3
    assert salt_for(bytes(32), "baeckerei", 7) != expected  # the key decides: erased, unguessable
    digest = sha(b"ON")
    assert (
        source_commitment(KEY, digest)
        == hashlib.blake2b(digest, key=KEY, digest_size=32, person=b"einblick/src/v1\x00").digest()
    )


def test_a_commitment_tells_none_from_empty_and_topic_from_content() -> None:
    salt = b"s" * 32
    assert content_tail(salt, None, None) == salt + b"\x00\x00"
    assert content_tail(salt, "a/b", b"x") == salt + b"\x01" + struct.pack(">I", 3) + b"a/b\x01x"
    values = [
        content_commitment(salt, None, None),
        content_commitment(salt, "", None),
        content_commitment(salt, None, b""),
        content_commitment(salt, "", b""),
        content_commitment(salt, "ab", b"c"),
        content_commitment(salt, "a", b"bc"),  # without the length these two would collide
    ]
    assert len(set(values)) == len(values)
    tail = content_tail(salt, "a/b", b"x")
    assert commitment_of_tail(tail) == content_commitment(salt, "a/b", b"x")
    assert commitment_of_tail(tail) == sha(b"einblick/content/v1\x00" + tail)


def test_an_entry_hash_covers_every_field_in_the_spec_s_order() -> None:
    prev, body, source, commitment = b"p" * 32, b"b" * 32, b"s" * 32, b"c" * 32
    fixed = struct.pack(">Qq", 3, -5)
    assert entry_hash(prev, 3, -5, body, source, commitment) == sha(
        b"einblick/entry/v1\x00" + prev + fixed + body + source + b"\x01" + commitment
    )
    assert entry_hash(prev, 3, -5, body, source, None) == sha(
        b"einblick/entry/v1\x00" + prev + fixed + body + source + b"\x00"
    )
    base = entry_hash(prev, 3, 1, body, source, commitment)
    for changed in (
        entry_hash(b"q" * 32, 3, 1, body, source, commitment),
        entry_hash(prev, 4, 1, body, source, commitment),
        entry_hash(prev, 3, 2, body, source, commitment),
        entry_hash(prev, 3, 1, b"B" * 32, source, commitment),
        entry_hash(prev, 3, 1, body, b"S" * 32, commitment),
        entry_hash(prev, 3, 1, body, source, None),
    ):
        assert changed != base


def test_signed_messages_are_domain_separated_canonical_json() -> None:
    checkpoint = checkpoint_message(
        origin="edge-07", customer="b", size=2, head=b"\xab" * 2, at_us=5, key_id=b"\x01"
    )
    assert checkpoint == (
        b"einblick/checkpoint/v1\x00"
        b'{"at":5,"customer":"b","head":"abab","key":"01","origin":"edge-07","size":2}'
    )
    rotation = rotation_message("edge-07", b"\x01", b"\x02", 9)
    assert rotation == b'einblick/rotation/v1\x00{"at":9,"new":"02","old":"01","origin":"edge-07"}'


@given(
    key=st.binary(min_size=1, max_size=64),
    digest=st.binary(min_size=32, max_size=32),
    chain=st.text(max_size=40),
    index=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_the_writers_ready_keyed_states_hash_as_the_plain_functions(
    key: bytes, digest: bytes, chain: str, index: int
) -> None:
    # The writer keeps each subject's keyed BLAKE2b states and copies them per entry: the bytes
    # must be the spec's, however often the states are used.
    states = keyed(key)
    for _ in range(2):
        assert keyed_source(states, digest) == source_commitment(key, digest)
        assert keyed_salt(states, chain, index) == salt_for(key, chain, index)
