"""The client micro-benchmark decodes every PUBLISH and answers each with one PUBACK."""

from __future__ import annotations

from gateway.bench.codecs import CODECS, IN_FLIGHT, WINDOW, measure, run_loop, run_paho, run_struct


def test_paho_reader_acknowledges_every_packet() -> None:
    # run_paho itself checks that 4 bytes of PUBACK were written per message.
    assert run_paho(300) == 300


def test_struct_floor_acknowledges_every_packet() -> None:
    assert run_struct(300) == 300


def test_measure_is_cpu_per_message() -> None:
    assert 0 < measure("struct", 2_000, rounds=1) < measure("paho", 2_000, rounds=1)


def test_the_gateway_s_client_acknowledges_every_packet() -> None:
    assert run_loop(300) == 300  # it checks the 4 bytes of PUBACK per message too


def test_every_publish_is_answered_in_both_directions_and_window_sizes() -> None:
    for name in (f"paho-out x{IN_FLIGHT}", f"loop-out x{IN_FLIGHT}", f"loop-out x{WINDOW}"):
        assert CODECS[name](1_000) == 1_000, name
