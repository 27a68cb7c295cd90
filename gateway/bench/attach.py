"""``einblick bench --attach COMMAND``: a profiler, or any tool, run against each system under test
while its load runs.

``COMMAND`` is split as a shell would split it (no shell runs it) and may name ``{pid}`` (the
process under test: the gateway, the forwarder, or broker A for the bridge), ``{system}``,
``{rate}`` (``1000``, or ``max``) and ``{round}`` (the round of ``--repeat``, from 1; 1 without
it), for example::

    einblick bench --rates 1000 --systems forwarder,einblick \\
        --attach 'perf record -F 1999 -p {pid} -o {system}-{rate}.data'

For a paced rate it starts once the system is up and its probe subscribed, and the load starts at
least half a second later (a profiler needs a moment to attach); when the rate's last message has
arrived it gets SIGINT, on which perf and py-spy write their output, and it has 30 s to end before
it is killed. For a "max" row it runs around the measured window only: it starts once the backlog
has been draining for a second, the window opens half a second later and the SIGINT comes when the
window closes. A command that names anything else, cannot start, or ends before the load starts
stops the benchmark with its reason; one that ends during the load, or has to be killed, is
reported. Its own cost is in the figures of that run: compare systems measured with the same tool
attached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import signal
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.errors import GatewayError

__all__ = ["Attach", "AttachError"]

PLACEHOLDERS = ("pid", "system", "rate", "round")
SETTLE_S = 0.5  # between the tool's start and the load's: perf and py-spy attach in ~0.1-0.3 s
STOP_S = 30.0  # after SIGINT: perf writes its data file, py-spy its profile


class AttachError(GatewayError):
    """The attached command could not be used: its reason, for the person running the bench."""


@dataclass(frozen=True, slots=True)
class Attach:
    argv: tuple[str, ...]  # as given, placeholders not yet filled in
    round_number: int = 1  # of --repeat: each round's output files apart

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
                parsed = list(string.Formatter().parse(word))
            except ValueError as exc:  # a lone brace
                raise AttachError(
                    f"--attach: {word!r}: {exc} (write {{{{ and }}}} for a brace itself)"
                ) from None
            for _, field, spec, conversion in parsed:
                if field is None:
                    continue  # plain text after the last placeholder
                if field not in PLACEHOLDERS or spec or conversion:
                    # Every value is filled in as text: a format or conversion would fail, or
                    # quote it, only once the systems are running.
                    raise AttachError(
                        f"--attach: {word!r} names {{{field}{'!' + conversion if conversion else ''}"
                        f"{':' + spec if spec else ''}}}; write {known} as they are"
                    )
        return cls(argv)

    def in_round(self, number: int) -> Attach:
        return dataclasses.replace(self, round_number=number)

    def filled(self, pid: int, system: str, rate: float) -> list[str]:
        if rate <= 0:
            shown = "max"
        elif rate.is_integer():  # 1000, not 1e+03: it goes into file names
            shown = f"{rate:.0f}"
        else:
            shown = f"{rate:.3f}".rstrip("0").rstrip(".")
        values = {"pid": str(pid), "system": system, "rate": shown, "round": str(self.round_number)}
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
            if (ended := process.poll()) is not None:  # said only of a load that ran to its end
                print(
                    f"--attach: {shlex.join(argv)} ended with code {ended} while the load ran "
                    f"({system} at {_rate_text(rate)}): its output may not cover the whole rate",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            if process.poll() is None:
                _stop(process, argv)


def _rate_text(rate: float) -> str:
    """The rate as a sentence names it."""
    return "max" if rate <= 0 else f"{rate:,.0f} msg/s"


def _stop(process: subprocess.Popen[bytes], argv: list[str]) -> None:
    """SIGINT, as perf and py-spy expect, then up to ``STOP_S`` for it to write and end."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_S)
    except subprocess.TimeoutExpired:
        print(
            f"--attach: {shlex.join(argv)} had not ended {STOP_S:g} s after SIGINT and was "
            "killed: its output may be missing",
            file=sys.stderr,
            flush=True,
        )
        process.kill()
        process.wait()
    except BaseException:  # interrupted while waiting (on the main thread): do not leave it running
        process.kill()
        process.wait()
        raise
