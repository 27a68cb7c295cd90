"""The shipped systemd unit is hardened, each setting says why, and systemd accepts it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "gateway" / "einblick.service"

REQUIRED = {
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ProtectHome": "true",
    "PrivateTmp": "true",
    "PrivateDevices": "true",
    "ProtectKernelTunables": "true",
    "ProtectKernelModules": "true",
    "ProtectKernelLogs": "true",
    "ProtectControlGroups": "true",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "true",
    "LockPersonality": "true",
    "MemoryDenyWriteExecute": "true",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
    "ReadWritePaths": "/etc/einblick /var/lib/einblick",
}


def _service(text: str) -> dict[str, tuple[str, bool]]:
    """[Service] settings: name -> (value, whether a comment sits in the block just above)."""
    settings: dict[str, tuple[str, bool]] = {}
    section = ""
    commented = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif line.startswith("#"):
            commented = True
        elif not line:
            commented = False
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings[key] = (value, commented)
    return settings


def test_the_unit_has_every_hardening_setting_each_with_its_reason() -> None:
    settings = _service(UNIT.read_text(encoding="utf-8"))
    for key, wanted in REQUIRED.items():
        assert key in settings, f"{UNIT.name}: {key} is missing"
        value, commented = settings[key]
        assert value == wanted, f"{UNIT.name}: {key}={value}, expected {wanted}"
        assert commented, f"{UNIT.name}: {key} has no comment saying why"
    assert "MemoryMax" in settings, f"{UNIT.name}: no MemoryMax"
    # `systemctl reload einblick` must reload, not restart: the gateway takes SIGHUP as reload.
    assert settings["ExecReload"][0] == "/bin/kill -HUP $MAINPID"
    config_dir = "/etc/einblick"
    assert settings["Environment"][0] == f"EINBLICK_CONFIG={config_dir}/einblick.yaml"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # systemd-analyze is part of Debian's systemd package; the check runs where it is installed
    # (this project's CI image has it) and otherwise the parse above is the whole check.
    analyze = shutil.which("systemd-analyze")
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/bin/einblick run" in text
    if analyze is None:
        assert _service(text)["Type"][0] == "simple"
        return
    # verify insists that ExecStart exists: point it at this interpreter.
    unit = tmp_path / "einblick.service"
    unit.write_text(
        text.replace(
            "ExecStart=/usr/local/bin/einblick run", f"ExecStart={sys.executable} -m gateway run"
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr, done.stderr
