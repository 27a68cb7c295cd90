"""The names a customer's rows show, as the TUI shows them: a device's display name from that
customer's own policy (never another customer's), a recipient's from the configuration.

Read from the policy files once and again only when one of them changes (their newest mtime,
looked at most once per ``CHECK_S``: a directory listing and a stat per file for every page and
every live row was a tenth of the portal's time under load), so a page costs a dictionary
lookup; a policy that does not load shows the ids, as the TUI does. Each reload is a new
``version``, which rendered rows are kept by.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from policies.errors import PolicyError
from policies.loader import load_policy

__all__ = ["CHECK_S", "DisplayNames", "NameBook"]

CHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class DisplayNames:
    devices: dict[str, str] = field(default_factory=dict)
    recipients: dict[str, str] = field(default_factory=dict)
    version: int = 0  # the book's reload these names come from

    def device(self, device: str | None) -> str | None:
        return None if device is None else self.devices.get(device, device)

    def recipient(self, recipient: str | None) -> str | None:
        return None if recipient is None else self.recipients.get(recipient, recipient)


class NameBook:
    """Display names per customer, from ``policies_dir``, cached until a policy file changes."""

    def __init__(
        self, policies_dir: Path, recipients: dict[str, str], check_s: float = CHECK_S
    ) -> None:
        self.policies_dir = policies_dir
        self.check_s = check_s
        self.recipients = dict(recipients)
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._checked = float("-inf")  # monotonic time the files were last looked at
        self._version = 0
        self._devices: dict[str, dict[str, str]] = {}
        self._names: dict[str, DisplayNames] = {}

    def _files(self) -> list[Path]:
        return sorted(self.policies_dir.glob("*.yaml")) + sorted(self.policies_dir.glob("*.yml"))

    def names(self, customer: str) -> DisplayNames:
        """``customer``'s device names (theirs only) and the recipients' names."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.check_s:
                self._checked = now
                self._reload_if_changed()
            found = self._names.get(customer)
            if found is None:
                devices = dict(self._devices.get(customer, {}))
                found = DisplayNames(devices, self.recipients, self._version)
                self._names[customer] = found
            return found

    def _reload_if_changed(self) -> None:
        files = self._files()
        stamp = max((p.stat().st_mtime for p in files), default=0.0) + len(files)
        if stamp == self._stamp:
            return
        self._devices = {}
        for path in files:
            try:
                policy = load_policy(path)
            except PolicyError:
                continue  # its devices show as ids, as in the TUI
            self._devices[policy.customer] = {d.id: d.name for d in policy.devices}
        self._stamp = stamp
        self._version += 1
        self._names = {}
