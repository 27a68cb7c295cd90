"""The database copies a running gateway makes for ``einblick backup``, and their sweep.

``einblick backup`` asks the running gateway to sign every log and copy the database as it
stood at that signature (the ``snapshot`` control operation); the copy lies in the data
directory, owner-only, until the backup command moves it away. A command killed or timed out
in between leaves its copy behind, and that copy holds every customer's content: it must not
outlive an erasure unseen. So the gateway removes every such copy when it starts (before any
new one can exist) and says so in its log.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

__all__ = ["SNAPSHOT_GLOB", "new_snapshot_path", "remove_stale_snapshots"]

log = logging.getLogger(__name__)

SNAPSHOT_GLOB = "backup-snapshot-*.db"


def new_snapshot_path(data_path: Path) -> Path:
    """Where the next copy goes: a fresh random name in the data directory."""
    return data_path / SNAPSHOT_GLOB.replace("*", secrets.token_hex(8))


def remove_stale_snapshots(data_path: Path) -> list[Path]:
    """Delete every copy a backup left behind; returns them. Called at start, under the
    directory lock, when no backup of this gateway can be running."""
    removed = sorted(data_path.glob(SNAPSHOT_GLOB))
    for stale in removed:
        log.warning("removing a backup snapshot left behind: %s", stale)
        stale.unlink(missing_ok=True)
    return removed
