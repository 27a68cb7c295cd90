"""atheris target: adversarial JSON documents (tests/fuzz/documents.py) with planted secrets.

    python -m tests.fuzz.document -atheris_runs=100000

Deep nesting, huge numbers, duplicate keys, NaN/Infinity, lone surrogates, invalid UTF-8 and
path-like keys, on the examples' topics; SECRET is planted wherever no grant reaches and must
never leave.
"""

from __future__ import annotations

from tests.fuzz.runner import fuzz


def _load() -> None:
    from tests.fuzz.checks import rotating_engine
    from tests.fuzz.documents import build_document  # noqa: F401 -- instrumented

    rotating_engine()


def one_input(data: bytes) -> None:
    import atheris

    from tests.fuzz.checks import TOPICS, check_message, rotating_engine
    from tests.fuzz.documents import Source, build_document

    engine = rotating_engine()
    provider = atheris.FuzzedDataProvider(data)
    source = Source(provider.ConsumeIntInRange, provider.ConsumeUnicode)
    topic = TOPICS[source.pick(TOPICS)]
    body = build_document(source)
    if provider.ConsumeBool():  # a 10 MB string now and then: refused as too large, fast
        body = body[:-1] + b',"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    check_message(engine, topic, body, planted=True)


if __name__ == "__main__":
    fuzz("document", one_input, _load)
