"""Running a target under atheris, with the count of inputs and findings printed at the end."""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable

__all__ = ["fuzz"]


def fuzz(name: str, one_input: Callable[[bytes], None], instrumented: Callable[[], None]) -> None:
    """``python -m tests.fuzz.<name> -atheris_runs=N [libFuzzer flags]``."""
    import atheris

    with atheris.instrument_imports(include=["policies", "tests.fuzz"]):
        instrumented()
    runs = [0]
    started = time.monotonic()

    def counted(data: bytes) -> None:
        runs[0] += 1
        one_input(data)

    def report() -> None:
        from tests.fuzz.checks import AMBIGUOUS_PATHS, INTERNAL_ERRORS

        elapsed = time.monotonic() - started
        print(
            f"fuzz target {name}: {runs[0]} inputs in {elapsed:.0f} s, no crash and no leak; "
            f"withheld by the engine's internal-error net: {dict(INTERNAL_ERRORS) or 'none'}; "
            f"paths named both released and withheld: {sum(AMBIGUOUS_PATHS.values())}",
            file=sys.stderr,
        )

    atexit.register(report)  # libFuzzer exits the process at the end; a crash never gets here
    atheris.Setup(sys.argv, counted)
    atheris.Fuzz()
