"""``einblick bench --attach`` (gateway/bench/attach.py): the command is checked before anything
starts, runs against the process under test while the block (the load) runs, gets SIGINT at its
end and is killed if it does not stop; through ``einblick bench`` it is attached to the real
system under test with its pid, name and rate filled in."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bench import attach as attach_module
from gateway.bench.attach import Attach, AttachError
from gateway.bench.pipeline import main

# Records its own pid, its arguments and the target's command line, then waits for SIGINT
# (answered by writing "stopped") or, with "--deaf", ignores it.
RECORDER = """
import os, pathlib, signal, sys
out = pathlib.Path(sys.argv[-1])
pid, *rest = sys.argv[1:-1]
target = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode()
def stop(*_):
    with out.open("a") as f:
        f.write("stopped\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, signal.SIG_IGN if "--deaf" in rest else stop)
out.write_text(f"{os.getpid()}\\n{' '.join(rest)}\\n{target}\\n")
while True:
    signal.pause()
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER, encoding="utf-8")
    return script


@pytest.fixture
def target() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _written(path: Path, lines: int) -> list[str]:
    """The recorder's file once it holds ``lines`` lines (it writes them at its start)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(text := path.read_text().splitlines()) >= lines:
            return text
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {lines} lines")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("", "--attach needs a command"),
        ("perf record -p {pid} -o {host}.data", "names {host}; it knows {pid}, {system}, {rate}"),
        ("perf record -p {pid", "write {{ and }} for a brace itself"),
        ("perf record -o 'unclosed", "No closing quotation"),
    ],
)
def test_a_command_that_cannot_be_filled_in_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], command: str, message: str
) -> None:
    with pytest.raises(AttachError) as refused:
        Attach.parse(command)
    assert message in str(refused.value)
    with pytest.raises(SystemExit):  # through the command line: no broker, no system started
        main(["--rates", "50", "--systems", "forwarder", "--attach", command])
    assert message in capsys.readouterr().err


def test_the_command_runs_against_the_target_while_the_block_runs_and_stops_on_sigint(
    tmp_path: Path, recorder: Path, target: subprocess.Popen[bytes]
) -> None:
    out = tmp_path / "recorded"
    attach = Attach.parse(
        shlex.join([sys.executable, str(recorder)]) + f" {{pid}} {{system}} {{rate}} {out}"
    )
    with attach.running(target.pid, "einblick-wake5", 1000.0):
        own_pid, arguments, command_line = _written(out, 3)
        assert Path(f"/proc/{own_pid}").exists()  # running while the load runs
    assert arguments == "einblick-wake5 1000"
    assert "time.sleep(600)" in command_line  # {pid} is the target's
    assert out.read_text().splitlines()[3:] == ["stopped"]  # SIGINT, and waited for
    assert not Path(f"/proc/{own_pid}").exists()  # ended and reaped
    assert Attach.parse("x {rate}").filled(1, "forwarder", 0.0) == ["x", "max"]


def test_a_command_that_ignores_sigint_is_killed(
    tmp_path: Path, recorder: Path, target: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attach_module, "STOP_S", 0.2)
    out = tmp_path / "recorded"
    attach = Attach.parse(shlex.join([sys.executable, str(recorder), "{pid}", "--deaf", str(out)]))
    with attach.running(target.pid, "forwarder", 100.0):
        own_pid = int(_written(out, 3)[0])
    assert not Path(f"/proc/{own_pid}").exists()
    assert "stopped" not in out.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/nonexistent/profiler", "{pid}"], "cannot start '/nonexistent/profiler': No such file"),
        (
            [sys.executable, "-c", "raise SystemExit(3)"],
            "ended with code 3 before the load started",
        ),
    ],
)
def test_a_command_that_cannot_start_or_ends_at_once_stops_with_its_reason(
    target: subprocess.Popen[bytes], argv: list[str], message: str
) -> None:
    ran = False
    attach = Attach.parse(shlex.join(argv))
    with pytest.raises(AttachError) as refused, attach.running(target.pid, "forwarder", 100.0):
        ran = True
    assert message in str(refused.value)
    assert not ran  # the load never started


def test_the_bench_attaches_the_command_to_the_system_under_test(
    tmp_path: Path, recorder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recorded"
    command = shlex.join([sys.executable, str(recorder), "{pid}", "{system}", "{rate}", str(out)])
    assert (
        main(["--rates", "50", "--duration", "1", "--systems", "forwarder", "--attach", command])
        == 0
    )
    printed = capsys.readouterr().out
    assert f"attached to each system while its load runs: {command}" in printed
    assert "\nforwarder " in printed  # the row was measured and printed
    own_pid, arguments, command_line, stopped = out.read_text().splitlines()
    assert arguments == "forwarder 50"
    assert "gateway.bench.forwarder" in command_line  # the forwarder's process, by its pid
    assert stopped == "stopped"
    assert int(own_pid) != os.getpid()
