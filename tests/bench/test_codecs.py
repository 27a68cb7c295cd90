"""The client micro-benchmark decodes every PUBLISH and answers each with one PUBACK."""

from __future__ import annotations

from gateway.bench.codecs import measure, run_paho, run_struct


def test_paho_reader_acknowledges_every_packet() -> None:
    # run_paho itself checks that 4 bytes of PUBACK were written per message.
    assert run_paho(300) == 300


def test_struct_floor_acknowledges_every_packet() -> None:
    assert run_struct(300) == 300


def test_measure_is_cpu_per_message() -> None:
    assert 0 < measure("struct", 2_000, rounds=1) < measure("paho", 2_000, rounds=1)
