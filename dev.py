#!/usr/bin/env python3
"""Set up and run Einblick on a fresh machine with nothing but Python 3.11+.

    python3 dev.py demo     # broker, cloud stand-in, simulated devices, gateway and the TUI
    python3 dev.py test     # every test (what CI runs), plus ruff and mypy
    python3 dev.py bench    # the performance benchmarks (figures for the README)

Creates ``.venv`` beside this file, installs the project into it, and installs Mosquitto from
Debian's packages when it is missing and we are root (otherwise it says exactly what to run).
Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".einblick-installed"


def say(text: str) -> None:
    print(f"[dev] {text}", file=sys.stderr, flush=True)


def ensure_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on any Python to say so
        sys.exit(f"Einblick needs Python 3.11 or newer; this is {sys.version.split()[0]}.")


def ensure_venv() -> None:
    if not (BIN / "python").exists():
        say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    say("installing Einblick and its test tools into .venv (first run takes a minute)")
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip", "setuptools", "wheel"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.touch()


# What the tests run for real beside Python, from Debian's packages: the broker Einblick supervises,
# Go's own sumdb/note and sumdb/tlog (a log implementation we did not write checks our proofs),
# and a browser for the customer portal's tests.
TEST_PACKAGES = {
    "mosquitto": ("mosquitto", "mosquitto-clients"),
    "go": ("golang-go", "golang-golang-x-mod-dev"),
    "chromium": ("chromium",),
}


def _installed(tool: str) -> bool:
    if tool == "mosquitto":
        return bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()
    if tool == "go":
        return bool(shutil.which("go")) and Path("/usr/share/gocode/src/golang.org/x/mod").is_dir()
    return bool(shutil.which(tool))


def ensure_debian_packages(tools: tuple[str, ...]) -> None:
    missing = [tool for tool in tools if not _installed(tool)]
    if not missing:
        return
    packages = [p for tool in missing for p in TEST_PACKAGES[tool]]
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        say("installing from Debian's packages: " + " ".join(packages))
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env)
        subprocess.run(
            [apt, "install", "-y", "-qq", "--no-install-recommends", *packages],
            check=True,
            env=env,
        )
        if "mosquitto" in missing:
            # Debian starts a system broker on port 1883; Einblick runs its own, so stop that one.
            subprocess.run(["service", "mosquitto", "stop"], check=False, capture_output=True)
        return
    if missing == ["mosquitto"]:
        sys.exit(
            "Mosquitto (the MQTT broker Einblick supervises) is not installed.\n"
            "Install it, then run this again:\n"
            "    sudo apt-get install mosquitto mosquitto-clients     # Debian, Ubuntu, Raspberry Pi OS\n"
            "    sudo dnf install mosquitto                           # Fedora\n"
            "    brew install mosquitto                               # macOS"
        )
    sys.exit(
        "The tests need these Debian packages, which are not installed:\n"
        f"    sudo apt-get install {' '.join(packages)}\n"
        "then run this again."
    )


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """The portal's browser tests drive Debian's chromium (Playwright with its executable path:
    no browser download), so the tests install it like Mosquitto."""
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        say("chromium is missing (the portal's browser tests use it): installing Debian's package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env)
        subprocess.run(
            [apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            env=env,
        )
        return
    sys.exit(
        "chromium (the browser the portal's tests drive) is not installed.\n"
        "Install it, then run this again:\n"
        "    sudo apt-get install chromium     # Debian, Raspberry Pi OS (Ubuntu: chromium-browser)"
    )


# The suite runs on every core (pytest-xdist, one worker per CPU): most of its time is waiting
# on real brokers, gateways and browsers, which overlaps. ``loadgroup``: tests marked
# ``xdist_group`` share one worker. The slowest tests are listed so a growing one is seen; an
# option given after ``dev.py test`` wins (``-n 0`` runs in one process, e.g. to debug).
PYTEST_WORKERS = "auto"
PYTEST_OPTIONS = ["-n", PYTEST_WORKERS, "--dist", "loadgroup", "--durations=25"]


def run(argv: list[str]) -> int:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}:/usr/sbin"}
    return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode


def main() -> int:
    ensure_python()
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    extra = sys.argv[2:]
    if command not in {"demo", "test", "bench"}:
        print(__doc__)
        return 0 if command == "help" else 2
    ensure_venv()
    ensure_debian_packages(("mosquitto",) if command != "test" else tuple(TEST_PACKAGES))
    if command == "demo":
        return run([str(BIN / "einblick"), "demo", *extra])
    if command == "bench":
        return run([str(BIN / "python"), "-m", "gateway.bench", *extra])
    ensure_chromium()
    started = time.monotonic()
    for step in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
        [str(BIN / "lint-imports")],  # the import contracts in pyproject.toml
    ):
        say("running " + " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)))
        code = run(step)
        if code != 0:
            return code
    checked = time.monotonic()
    say(f"checks took {checked - started:.0f} s; running pytest on {PYTEST_WORKERS} workers")
    code = run([str(BIN / "python"), "-m", "pytest", *PYTEST_OPTIONS, *extra])
    finished = time.monotonic()
    say(
        f"pytest took {finished - checked:.0f} s (exit code {code}); "
        f"checks and tests {finished - started:.0f} s"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
