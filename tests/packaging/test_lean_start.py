"""The gateway's own process loads only what it runs.

``einblick run`` parses the same command line as every other subcommand, so whatever a command
module imports at its top is loaded by the gateway too. Textual (the TUI), the device
simulators and the HTTP client (witnesses only) are each imported where they are used: on an
edge box they would otherwise cost the gateway tens of MB it never uses.
"""

from __future__ import annotations

import subprocess
import sys

import orjson

PROBE = """
import sys, orjson
import gateway.cli, gateway.app
from gateway.cli import main
top = sorted({m.split(".")[0] for m in sys.modules})
sys.stdout.write(orjson.dumps(top).decode())
"""


def test_the_gateway_process_does_not_load_the_tui_simulators_or_http_client() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, timeout=60
    ).stdout
    loaded = set(orjson.loads(out))
    assert {"gateway", "policies", "paho", "cryptography"} <= loaded  # the probe ran for real
    assert not loaded & {"textual", "rich", "tui", "simulators", "aiohttp"}
