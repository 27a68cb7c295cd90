"""A fleet (simulators/fleet.py): every payload profile has a simulator, a fleet is ``count``
devices of that family under the family's topics, the same seed gives the same devices and
messages and another seed others, ids are distinct, and a wrong name or count is refused."""

from __future__ import annotations

import pytest

from policies.profiles import PROFILES, UnknownProfile, profile
from simulators.devices import SimulatedDevice
from simulators.fleet import BUILDERS, build_fleet

T0 = 1_700_000_000.0


def _run(device: SimulatedDevice, n: int) -> list[tuple[str, bytes]]:
    return [device.next_message(T0 + k * 30.0) for k in range(n)]


def test_every_payload_profile_has_a_simulator() -> None:
    assert set(BUILDERS) == set(PROFILES)


@pytest.mark.parametrize("family", sorted(PROFILES))
def test_a_fleet_is_count_devices_speaking_their_familys_topics(family: str) -> None:
    fleet = build_fleet(family, 5, seed=3)
    assert len(fleet) == 5
    known = profile(family)
    for device in fleet:
        topic, _ = device.next_message(T0)
        assert known.match(topic) is not None, f"{family}: {topic}"
    assert build_fleet(family, 0, seed=3) == []


@pytest.mark.parametrize("family", sorted(PROFILES))
def test_same_seed_same_messages_other_seed_other_messages(family: str) -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        return [msg for d in build_fleet(family, 3, seed) for msg in _run(d, 6)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_fleet_ids_are_distinct_and_unknown_profile_is_named() -> None:
    for family in BUILDERS:
        ids = [d.device_id for d in build_fleet(family, 30, seed=1)]
        assert len(set(ids)) == len(ids), family
    with pytest.raises(UnknownProfile, match="owntracks"):
        build_fleet("owntrack", 1, seed=1)
    with pytest.raises(ValueError, match="-1"):
        build_fleet("owntracks", -1, seed=1)
