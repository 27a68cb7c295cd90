"""JSON as firmware writes it: fixed decimals kept to the digit, spaced or compact."""

from __future__ import annotations

import json

from simulators.wire import Fixed, dumps


def test_fixed_numbers_keep_their_printed_digits() -> None:
    payload = dumps({"temp": Fixed(23.2, 2), "volt": Fixed(4, 3), "n": 3, "ok": True, "x": None})
    assert payload == b'{"temp":23.20,"volt":4.000,"n":3,"ok":true,"x":null}'
    assert json.loads(payload)["temp"] == 23.2  # still valid JSON


def test_spaced_as_mosquitto_pub_users_type_it() -> None:
    assert dumps({"a": [1, Fixed(0.5, 1)], "b": "ü"}, spaced=True) == (
        '{"a": [1, 0.5], "b": "ü"}'.encode()
    )


def test_nested_objects_and_arrays_in_key_order() -> None:
    value = {"z": {"y": [], "x": {}}, "a": [[Fixed(1, 0)]]}
    assert dumps(value) == b'{"z":{"y":[],"x":{}},"a":[[1]]}'
