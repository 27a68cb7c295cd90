"""The collector's settings for a running gateway (gateway/messages/heap.py): after start-up, a
stream of batches that hold their objects for a moment triggers no full collection.

Each case runs in a fresh interpreter: ``settle`` changes process-wide state (frozen objects,
thresholds) that must not leak into the rest of the test session."""

from __future__ import annotations

import subprocess
import sys

# Start-up: a long-lived heap (as the compiled policies and the locale data are), then batches of
# short-lived containers held together, as the pipeline holds a batch across its commit.
_WORKLOAD = """
import gc, sys
from gateway.messages.heap import YOUNG_THRESHOLD, settle
resident = [{"k": [i, str(i)]} for i in range(200_000)]
if sys.argv[1] == "settled":
    settle()
    assert gc.get_freeze_count() >= len(resident), gc.get_freeze_count()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
for _ in range(300):
    batch = [({"topic": "t", "n": i}, [i], (i, [i])) for i in range(1_000)]
    del batch
print(len(full))
"""


def _full_collections(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_batches_after_settling_trigger_no_full_collection() -> None:
    assert _full_collections("settled") == 0


def test_the_same_batches_with_the_defaults_do_trigger_full_collections() -> None:
    # The control: without settle() this workload does walk the old generation, so the case
    # above measures the settings, not a workload too small to matter.
    assert _full_collections("defaults") > 0
