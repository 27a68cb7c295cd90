"""atheris target: the policy parser, loader and compiler on fuzzed and mutated policy text.

    python -m tests.fuzz.policy -atheris_runs=100000

Any text either loads into a policy that then evaluates messages without an internal error, or
is refused with a PolicyError that names the file; nothing else may come out (no traceback).
"""

from __future__ import annotations

from functools import cache

from tests.fuzz.runner import fuzz


@cache
def _examples() -> tuple[str, ...]:
    from policies.examples import EXAMPLES, example_path

    return tuple(example_path(n).read_text(encoding="utf-8") for n in EXAMPLES)


def _load() -> None:
    from tests.fuzz.checks import check_policy_text  # noqa: F401 -- instrumented

    _examples()


def one_input(data: bytes) -> None:
    from tests.fuzz.checks import check_policy_text

    if len(data) < 3:
        check_policy_text(data.decode("utf-8", "replace"))
        return
    mode, where, rest = data[0] % 4, int.from_bytes(data[1:3], "big"), data[3:]
    fuzzed = rest.decode("utf-8", "surrogateescape" if mode == 3 else "replace")
    if mode == 0:
        text = fuzzed  # anything at all
    else:
        example = _examples()[data[0] % len(_examples())]
        if mode == 1:  # fuzz text inserted somewhere in a valid policy
            at = where % (len(example) + 1)
            text = example[:at] + fuzzed + example[at:]
        else:  # one line of a valid policy replaced
            lines = example.splitlines()
            lines[where % len(lines)] = fuzzed
            text = "\n".join(lines)
    check_policy_text(text)


if __name__ == "__main__":
    fuzz("policy", one_input, _load)
