"""This box's instance name when the configuration names none: unique per box, stable across
restarts (it is the client id upstream and the origin of the log's checkpoints)."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

__all__ = ["MACHINE_ID_FILES", "box_instance", "host_part"]

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def host_part() -> str:
    """This box's hostname as an instance-name prefix: lower case, [a-z0-9-], at most 40."""
    slug = re.sub(r"[^a-z0-9]+", "-", socket.gethostname().lower()).strip("-")[:40].strip("-")
    return slug or "edge"


def box_instance() -> str:
    """The instance name of a configuration that names none: unique per box and stable.

    The instance is the client id upstream (``einblick-<instance>-<recipient>``) and the origin
    of the log's checkpoints. A fixed default (it was ``edge-01``) made two boxes publishing to
    one recipient broker take each other's session over and over, each reconnect kicking the
    other off. It must also stay the same across restarts (a persistent session and the
    checkpoint origin hang on it), so it comes from the machine id, not from chance; a box
    without one falls back to its hostname alone."""
    for path in MACHINE_ID_FILES:
        try:
            machine = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine:
            return f"{host_part()}-{hashlib.sha256(machine.encode()).hexdigest()[:6]}"
    return host_part()
