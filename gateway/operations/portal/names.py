"""The names a customer's rows show, as the TUI shows them: a device's display name from that
customer's own policy (never another customer's), a recipient's from the configuration.

Read from the policy files once and again only when one of them changes (their newest mtime),
so a page costs a dictionary lookup; a policy that does not load shows the ids, as the TUI does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from policies.errors import PolicyError
from policies.loader import load_policy

__all__ = ["DisplayNames", "NameBook"]


@dataclass(frozen=True, slots=True)
class DisplayNames:
    devices: dict[str, str] = field(default_factory=dict)
    recipients: dict[str, str] = field(default_factory=dict)

    def device(self, device: str | None) -> str | None:
        return None if device is None else self.devices.get(device, device)

    def recipient(self, recipient: str | None) -> str | None:
        return None if recipient is None else self.recipients.get(recipient, recipient)


class NameBook:
    """Display names per customer, from ``policies_dir``, cached until a policy file changes."""

    def __init__(self, policies_dir: Path, recipients: dict[str, str]) -> None:
        self.policies_dir = policies_dir
        self.recipients = dict(recipients)
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._devices: dict[str, dict[str, str]] = {}

    def _files(self) -> list[Path]:
        return sorted(self.policies_dir.glob("*.yaml")) + sorted(self.policies_dir.glob("*.yml"))

    def names(self, customer: str) -> DisplayNames:
        """``customer``'s device names (theirs only) and the recipients' names."""
        files = self._files()
        stamp = max((p.stat().st_mtime for p in files), default=0.0) + len(files)
        with self._lock:
            if stamp != self._stamp:
                self._devices = {}
                for path in files:
                    try:
                        policy = load_policy(path)
                    except PolicyError:
                        continue  # its devices show as ids, as in the TUI
                    self._devices[policy.customer] = {d.id: d.name for d in policy.devices}
                self._stamp = stamp
            return DisplayNames(dict(self._devices.get(customer, {})), self.recipients)
