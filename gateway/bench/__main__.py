"""``python -m gateway.bench`` (what ``python3 dev.py bench`` runs): every benchmark, in turn.

    policies   decisions per second vs plain json.loads + json.dumps
    log        appended / verified entries per second, bytes per entry vs plain executemany
    pipeline   the whole gateway vs Mosquitto's bridge vs a no-policy paho forwarder (einblick bench)
    stages     where the gateway's CPU goes at 1,000 msg/s, stage by stage (python -m gateway.bench.stages)
    tui        opening and following a log of 1,000,000 entries (python -m gateway.bench.tui)
    witness    add-checkpoint latency against a real witness process (python -m gateway.bench.witness)

Pass a name to run one: ``python3 dev.py bench pipeline --rates 1000``.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = {
    "policies": ["-m", "gateway.bench.policies"],
    "log": ["-m", "gateway.bench.log", "--entries", "100000"],
    "pipeline": ["-m", "gateway.bench.pipeline"],
    "stages": ["-m", "gateway.bench.stages"],
    "tui": ["-m", "gateway.bench.tui", "--entries", "1000000"],
    "witness": ["-m", "gateway.bench.witness"],
}


def main(argv: list[str]) -> int:
    names = [argv[0]] if argv and argv[0] in BENCHES else list(BENCHES)
    extra = argv[1:] if argv and argv[0] in BENCHES else argv
    for name in names:
        print(f"== {name} ==", flush=True)
        code = subprocess.run([sys.executable, *BENCHES[name], *extra], check=False).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
