"""``einblick bench --attach COMMAND``: a profiler, or any tool, run against each system under test
while its load runs.

``COMMAND`` is split as a shell would split it (no shell runs it) and may name ``{pid}`` (the
process under test: the gateway, the forwarder, or broker A for the bridge), ``{system}`` and
``{rate}`` (``1000``, or ``max``), for example::

    einblick bench --rates 1000 --systems forwarder,einblick \\
        --attach 'perf record -F 1999 -p {pid} -o {system}-{rate}.data'

It starts once the system is up and its probe subscribed; the load starts half a second later
(a profiler needs a moment to attach). When the rate's last message has arrived (for a "max"
row: when its measured window ends) it gets SIGINT, on which perf and py-spy write their output,
and has 30 s to end before it is killed. A tool that cannot start, or that ends before the load
starts, stops the benchmark with its reason. Its own cost is in the figures of that run: compare
systems measured with the same tool attached.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.errors import GatewayError

__all__ = ["Attach", "AttachError"]

PLACEHOLDERS = ("pid", "system", "rate")
SETTLE_S = 0.5  # between the tool's start and the load's: perf and py-spy attach in ~0.1-0.3 s
STOP_S = 30.0  # after SIGINT: perf writes its data file, py-spy its profile


class AttachError(GatewayError):
    """The attached command could not be used: its reason, for the person running the bench."""


@dataclass(frozen=True, slots=True)
class Attach:
    argv: tuple[str, ...]  # as given, placeholders not yet filled in

    @classmethod
    def parse(cls, text: str) -> Attach:
        """The command, checked before anything starts: split, not empty, placeholders known."""
        try:
            argv = tuple(shlex.split(text))
        except ValueError as exc:
            raise AttachError(f"--attach {text!r}: {exc}") from None
        if not argv:
            raise AttachError("--attach needs a command, e.g. 'perf record -p {pid}'")
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        for word in argv:
            try:
                fields = [field for _, field, _, _ in string.Formatter().parse(word) if field]
            except ValueError as exc:  # a lone brace
                raise AttachError(
                    f"--attach: {word!r}: {exc} (write {{{{ and }}}} for a brace itself)"
                ) from None
            for field in fields:
                if field not in PLACEHOLDERS:
                    raise AttachError(f"--attach: {word!r} names {{{field}}}; it knows {known}")
        return cls(argv)

    def filled(self, pid: int, system: str, rate: float) -> list[str]:
        values = {"pid": str(pid), "system": system, "rate": f"{rate:g}" if rate > 0 else "max"}
        return [word.format(**values) for word in self.argv]

    @contextlib.contextmanager
    def running(self, pid: int, system: str, rate: float) -> Iterator[None]:
        """The command runs while the block does: the block is the load and its measurement."""
        argv = self.filled(pid, system, rate)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise AttachError(f"--attach: cannot start {argv[0]!r}: {exc.strerror}") from None
        try:
            time.sleep(SETTLE_S)
            if (code := process.poll()) is not None:
                raise AttachError(
                    f"--attach: {shlex.join(argv)} ended with code {code} before the load "
                    f"started (its own message is above)"
                )
            yield
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(STOP_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
