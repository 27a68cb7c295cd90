"""Replacing a small file so that a crash or a power cut leaves the old file or the new one,
whole, and a replacement that returned is on the disk.

For the notes beside the log (where a moved customer's log went, where an old copy of it is):
the log's commits they stand beside are durable, so the notes must be too — a log saying "taken
over" with the note of where the copy is lost would leave an erasure unable to reach it. The
bytes reach the disk before the rename, and the directory's entry after it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_durably"]


def replace_durably(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` (owner-only, like every file of a box), durably and atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
