"""The built wheel works on its own: installed into a fresh virtual environment (no source tree
on the path), `einblick init` writes a working box and `einblick demo` runs end to end.

This catches what an editable install hides: package data (locale catalogs, example policies,
the stylesheet, the systemd unit) left out of the wheel, or a dependency not declared.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(argv: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of this checkout may leak in through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{env.get('PATH', '')}:/usr/sbin"
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_wheel_installs_into_a_fresh_venv_and_runs_init_and_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT],
        cwd=tmp_path,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("einblick-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    installed = _run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel],
        cwd=tmp_path,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr

    # The installed package, not this checkout, is what runs.
    where = _run(
        [bin_dir / "python", "-c", "import gateway, policies, tui; print(gateway.__file__)"],
        cwd=tmp_path,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout

    box = tmp_path / "box"
    init = _run([bin_dir / "einblick", "init", box], cwd=tmp_path, timeout=120)
    assert init.returncode == 0, init.stderr
    for name in ("einblick.yaml", "data/keys/signing.key", "data/tls/ca.crt"):
        assert (box / name).is_file(), f"einblick init did not write {name}"
    policies = sorted((box / "policies").glob("*.yaml"))
    assert policies, "einblick init wrote no example policies (package data missing?)"
    check = _run([bin_dir / "einblick", "policy", "check", *policies], cwd=box, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    demo_dir = tmp_path / "demo"
    demo = _run(
        [bin_dir / "einblick", "demo", "--no-tui", "--duration", "6", "--dir", demo_dir],
        cwd=tmp_path,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    verify = _run(
        [bin_dir / "einblick", "verify", "--db", demo_dir / "data" / "einblick.db"],
        cwd=tmp_path,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert " OK" in verify.stdout

    # German texts come from packaged data; the customer-facing records must come out in German.
    records = _run(
        [bin_dir / "einblick", "records", "--lang", "de", "-c", box / "einblick.yaml"],
        cwd=box,
        timeout=60,
    )
    assert records.returncode == 0, records.stderr
    assert "Verzeichnis von Verarbeitungstätigkeiten" in records.stdout, records.stdout[:500]
