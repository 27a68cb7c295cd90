"""What an installer sees when the gateway stops for a reason it can explain: the reason, on one
line, and exit status 2 — never a traceback, wherever in the gateway the error was raised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.devices.ports import free_port
from gateway.operations.scaffold import InitOptions, init_directory


def test_an_error_inside_the_task_group_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # The forwarder builds its TLS context inside its own TaskGroup, inside the gateway's: the
    # error reaches the command line wrapped in two ExceptionGroups.
    missing = tmp_path / "no-such-ca.pem"
    config = init_directory(
        InitOptions(
            directory=tmp_path / "edge",
            broker_port=free_port(),
            upstream_url=f"mqtt://127.0.0.1:{free_port()}",
        )
    )
    text = config.read_text(encoding="utf-8")
    first = "  - name: oven-maker\n"
    assert first in text, "the generated configuration no longer names oven-maker first"
    at = text.index(first)
    url = text.index("    url: mqtt://", at)
    text = (
        text[:url]
        + f"    tls:\n      ca_file: {missing}\n    url: mqtts://"
        + text[url + len("    url: mqtt://") :]
    )
    config.write_text(text, encoding="utf-8")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = gateway.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        gateway.terminate()  # stops its Mosquitto too, which a kill would leave behind
        _, stderr = gateway.communicate(timeout=30)
        raise AssertionError(f"the gateway kept running:\n{stderr}") from None
    assert gateway.returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    diagnoses = [line for line in stderr.splitlines() if line.startswith("einblick: ")]
    assert len(diagnoses) == 1, stderr
    assert f"cannot use the CA file {missing}" in diagnoses[0]
    assert "einblick-" in diagnoses[0] and "oven-maker" in diagnoses[0]  # whose link it is
