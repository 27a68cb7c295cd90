"""Owner-only files: everything Einblick keeps on the box is readable by its user alone.

The data directory holds personal data (the log's content, queued payloads, Mosquitto's
persistence), secrets (signing, TLS and pseudonymisation keys, the broker's password file) and
the control socket, through which anyone who can connect may withdraw consents or erase a
customer. So every directory is 0700 and every file (socket included) 0600, whatever the umask
of the shell or unit that started Einblick:

- ``UMASK`` is set by the ``einblick`` command for everything it and its children (Mosquitto)
  create;
- ``tighten`` runs when the gateway starts, for files an older release, another tool or an
  installer's ``cp`` left wider.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["DIRECTORY_MODE", "FILE_MODE", "UMASK", "tighten"]

log = logging.getLogger(__name__)

UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def tighten(directory: Path) -> list[Path]:
    """Make ``directory`` and everything under it owner-only; return what had to change.

    Symbolic links are neither followed nor changed (their own mode means nothing on Linux):
    a link planted inside must not make us chmod a file outside. Files that vanish while we
    walk (a rotated log, SQLite's -shm) are skipped."""
    changed: list[Path] = []

    def fix(path: Path, wanted: int) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode) or stat.S_IMODE(mode) == wanted:
            return
        try:
            os.chmod(path, wanted, follow_symlinks=False)
        except FileNotFoundError:
            return
        changed.append(path)

    fix(directory, DIRECTORY_MODE)
    for root, dirs, files in os.walk(directory):  # os.walk does not descend into links
        for name in dirs:
            fix(Path(root, name), DIRECTORY_MODE)
        for name in files:
            fix(Path(root, name), FILE_MODE)
    if changed:
        log.warning(
            "%s: made %d file(s) owner-only that others could read (first: %s)",
            directory,
            len(changed),
            changed[0],
        )
    return changed
