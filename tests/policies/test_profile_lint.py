"""The profile warning of ``policy check``: a grant that keeps a direct personal field of a
device's payload profile unchanged is named with its line; treating the field, or a more
specific rule that does, silences it; a profile that does not exist is named too."""

from __future__ import annotations

from typing import Any

from policies.compiler import compile_policy
from policies.loader import load_policy_text
from policies.profile_lint import profile_warnings
from tests.policies.test_suggest import policy_with


def warnings(fields: dict[str, Any], profile_name: str = "owntracks", **grant: Any) -> list[str]:
    text = policy_with(fields, profile_name, **grant)
    policy = compile_policy(load_policy_text(text, "weber.yaml"), {"logistics": "Logistik"})
    found = profile_warnings(policy)
    assert all(w.path == "weber.yaml" for w in found)
    return [f"{w.line}: {w.message}" for w in found]


def test_keeping_a_direct_personal_field_is_named_with_the_grant_s_line() -> None:
    [found] = warnings({"lat": "keep", "batt": "keep"})
    # The grant starts on the line after 'grants:' in the dumped YAML.
    assert found.startswith(
        f"{_grant_line()}: grant 'family-map' releases 'lat' (location (latitude)"
    )
    assert "direct personal data in profile 'owntracks' of device 'phone'" in found
    assert found.endswith("unchanged with keep via 'lat'; suggested: coarsen 1000 m")


def test_a_treated_field_and_a_non_personal_field_are_quiet() -> None:
    assert warnings({"lat": {"coarsen": {"grid_m": 1000, "lon": "lon"}}, "batt": "keep"}) == []


def test_keeping_an_object_releases_the_personal_fields_inside_it() -> None:
    found = warnings({"iOS": "keep"})
    assert any("releases 'iOS.deviceIdentifierForVendor'" in w for w in found), found


def test_a_more_specific_rule_that_treats_the_field_decides_it() -> None:
    # A more specific rule that treats the field decides it: no warning for that field.
    found = warnings({"iOS.*": "keep"})
    assert any("releases 'iOS.deviceIdentifierForVendor'" in w for w in found), found
    quieter = warnings({"iOS.*": "keep", "iOS.deviceIdentifierForVendor": "pseudonymise"})
    assert not any("deviceIdentifierForVendor" in w for w in quieter), quieter
    assert len(quieter) == len(found) - 1


def test_a_kept_topic_level_that_is_personal_is_named() -> None:
    found = warnings({"batt": "keep"}, topic="family/{user}", topic_levels={"user": "keep"})
    assert any("releases '$topic.user'" in w and "via '$topic.user'" in w for w in found), found


def test_an_unknown_profile_names_the_known_ones() -> None:
    [found] = warnings({"batt": "keep"}, "fitbit")
    assert "device 'phone' names payload profile 'fitbit'; known profiles: " in found
    assert "owntracks" in found and "zigbee2mqtt" in found


def _grant_line() -> int:
    lines = policy_with({"lat": "keep"}).splitlines()
    return lines.index("grants:") + 2
