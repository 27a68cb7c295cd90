"""atheris target: raw bytes as a device's message body, on every topic the examples know.

    python -m tests.fuzz.payload -atheris_runs=100000

Checks (tests/fuzz/checks.py): the engine never raises, never hits its internal-error net,
explains every decision, and releases nothing beyond its grant.
"""

from __future__ import annotations

from tests.fuzz.runner import fuzz


def _load() -> None:
    from tests.fuzz.checks import rotating_engine

    rotating_engine()


def one_input(data: bytes) -> None:
    from tests.fuzz.checks import TOPICS, check_message, rotating_engine

    engine = rotating_engine()
    if not data:
        check_message(engine, TOPICS[0], b"")
        return
    topic = TOPICS[data[0] % len(TOPICS)]
    if data[0] >= 0xF0 and len(data) > 2:  # a topic level replaced by fuzz text
        levels = topic.split("/")
        cut = min(len(data), 2 + data[1] % 24)
        levels[data[1] % len(levels)] = data[2:cut].decode("utf-8", "replace")
        topic, data = "/".join(levels), data[cut:]
    check_message(engine, topic, data[1:])


if __name__ == "__main__":
    fuzz("payload", one_input, _load)
