"""Which keys a 0.1.0 log is checked against: the pinned (or first) key and keys linked to it
by rotation records both keys signed; a record that does not verify links nothing."""

from __future__ import annotations

from gateway.log.chain import rotation_message
from gateway.log.keys import Signer
from gateway.log.legacy_keys import KeyRecord, trusted_keys

ORIGIN = "gw-test"


def rotation(old: Signer, new: Signer, at: int, *, forge_old: bool = False) -> KeyRecord:
    message = rotation_message(ORIGIN, old.public.raw, new.public.raw, at)
    signer_of_old = Signer.generate() if forge_old else old
    return KeyRecord(
        new.public.raw, at, old.public.key_id, signer_of_old.sign(message), new.sign(message)
    )


def test_the_first_key_and_its_rotations_are_trusted() -> None:
    first, second, third = Signer.generate(), Signer.generate(), Signer.generate()
    keys = [
        KeyRecord(first.public.raw, 0),
        rotation(first, second, 10),
        rotation(second, third, 20),
    ]
    trusted, problems = trusted_keys(ORIGIN, keys, None)
    assert problems == []
    assert set(trusted) == {first.public.key_id, second.public.key_id, third.public.key_id}
    # pinning the newest key trusts the older ones linked to it as well
    pinned, _ = trusted_keys(ORIGIN, keys, third.public)
    assert set(pinned) == set(trusted)


def test_a_rotation_the_old_key_did_not_sign_links_nothing() -> None:
    first, intruder = Signer.generate(), Signer.generate()
    keys = [KeyRecord(first.public.raw, 0), rotation(first, intruder, 10, forge_old=True)]
    trusted, problems = trusted_keys(ORIGIN, keys, None)
    assert set(trusted) == {first.public.key_id}
    assert len(problems) == 1 and "signature of the old key" in problems[0]


def test_a_pinned_key_unrelated_to_the_log_trusts_only_itself() -> None:
    first, stranger = Signer.generate(), Signer.generate()
    trusted, _ = trusted_keys(ORIGIN, [KeyRecord(first.public.raw, 0)], stranger.public)
    assert set(trusted) == {stranger.public.key_id}


def test_a_first_key_record_with_signatures_is_a_key_problem() -> None:
    first = Signer.generate()
    odd = KeyRecord(first.public.raw, 5, None, b"x", b"y")
    _, problems = trusted_keys(ORIGIN, [odd], None)
    assert problems and "expected a bare record" in problems[0]
