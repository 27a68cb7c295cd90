"""``einblick bench --attach`` (gateway/bench/attach.py): the command is checked before anything
starts, runs against the process under test while the block (the load) runs, gets SIGINT at its
end and is killed if it does not stop; through ``einblick bench`` it is attached to the real
system under test with its pid, name and rate filled in."""

from __future__ import annotations

import os
import re
import shlex
import signal
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
        (
            "perf record -p {pid} -o {host}.data",
            "names {host}; write {pid}, {system}, {rate}, {round} as they are",
        ),
        ("perf record -p {pid", "write {{ and }} for a brace itself"),
        ("perf record -o 'unclosed", "No closing quotation"),
        ("perf record -p {}", "names {}; write {pid}, {system}, {rate}, {round} as they are"),
        ("perf record -p {pid:d}", "names {pid:d}; write {pid}"),
        ("perf record -p {pid!r}", "names {pid!r}; write {pid}"),
        ("x {pid:{host}}", "names {pid:{host}}; write {pid}"),
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
    rate = Attach.parse("x-{rate}-{round}")
    shown = [rate.filled(1, "f", r)[0] for r in (0.0, 1e6, 2.5, 1000.0004)]
    assert shown == ["x-max-1", "x-1000000-1", "x-2.5-1", "x-1000-1"]  # no exponent, no dot
    assert rate.in_round(3).filled(1, "f", 50.0) == ["x-50-3"]


def test_a_command_that_ignores_sigint_is_killed_and_said_so(
    tmp_path: Path,
    recorder: Path,
    target: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(attach_module, "STOP_S", 0.2)
    out = tmp_path / "recorded"
    attach = Attach.parse(shlex.join([sys.executable, str(recorder), "{pid}", "--deaf", str(out)]))
    with attach.running(target.pid, "forwarder", 100.0):
        own_pid = int(_written(out, 3)[0])
    assert not Path(f"/proc/{own_pid}").exists()
    assert "stopped" not in out.read_text()
    assert "had not ended 0.2 s after SIGINT and was killed" in capsys.readouterr().err


def test_a_command_that_ends_while_the_load_runs_is_reported(
    tmp_path: Path,
    recorder: Path,
    target: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "recorded"
    attach = Attach.parse(shlex.join([sys.executable, str(recorder), "{pid}", str(out)]))
    with attach.running(target.pid, "einblick", 1000.0):
        own_pid = int(_written(out, 3)[0])
        os.kill(own_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # until it has ended (a zombie until reaped)
        while Path(f"/proc/{own_pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the tool did not end"
            time.sleep(0.02)
    err = capsys.readouterr().err
    assert "ended with code -9 while the load ran (einblick at 1,000 msg/s)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/nonexistent/profiler", "{pid}"], "cannot start '/nonexistent/profiler': No such file"),
        (["sh", "-c", "exit 3"], "ended with code 3 before the load started"),
    ],
)
def test_a_command_that_cannot_start_or_ends_at_once_stops_with_its_reason(
    target: subprocess.Popen[bytes],
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = False
    attach = Attach.parse(shlex.join(argv))
    with pytest.raises(AttachError) as refused, attach.running(target.pid, "forwarder", 100.0):
        ran = True
    assert message in str(refused.value)
    assert not ran  # the load never started
    assert "while the load ran" not in capsys.readouterr().err  # it did not run


def _bench_recorded(
    tmp_path: Path, recorder: Path, rate: str, system: str
) -> tuple[str, list[str]]:
    """``einblick bench`` at ``rate`` on ``system`` with the recorder attached: the command, and
    the recorder's lines (its pid, its arguments, the target's command line, "stopped")."""
    out = tmp_path / "recorded"
    command = shlex.join([sys.executable, str(recorder), "{pid}", "{system}", "{rate}", str(out)])
    argv = ["--rates", rate, "--duration", "1", "--systems", system, "--attach", command]
    assert main(argv) == 0
    return command, out.read_text().splitlines()


def test_the_bench_attaches_the_command_to_the_system_under_test(
    tmp_path: Path, recorder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, recorded = _bench_recorded(tmp_path, recorder, "50", "forwarder")
    printed = capsys.readouterr().out
    assert f"attached to each system while its load runs: {command}" in printed
    assert "\nforwarder " in printed  # the row was measured and printed
    _, arguments, command_line, stopped = recorded
    assert arguments == "forwarder 50"
    assert "gateway.bench.forwarder" in command_line  # the forwarder's process, by its pid
    assert stopped == "stopped"


def test_a_max_row_fills_in_max_and_the_bridges_broker_a(
    tmp_path: Path, recorder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, recorded = _bench_recorded(tmp_path, recorder, "0", "bridge")
    assert re.search(r"^bridge\s+(max|gen-bound)\s", capsys.readouterr().out, re.MULTILINE)
    _, arguments, command_line, stopped = recorded
    assert arguments == "bridge max"
    assert "mosquitto" in command_line  # the bridge's pid is broker A's, which does the bridging
    assert stopped == "stopped"
