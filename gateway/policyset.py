"""The customers' policy files as the running gateway holds them: loaded, compiled, hot-reloaded.

Each ``*.yaml`` in the policies directory is one customer's policy. A changed file applies to the
next message. A file that no longer loads keeps its last good version running, and the error —
file, line, column, key — is shown by ``einblick status``, the TUI and the gateway's log until the
file is fixed. A customer whose file never loaded has no policy: everything of theirs is withheld.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.registry import RegisteredDevice
from policies.compiler import CompiledPolicy, compile_policy
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.model import DeviceSpec, PolicyDocument, TopicSpec

__all__ = ["LoadedFile", "PolicySet"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadedFile:
    path: Path
    mtime_ns: int
    customer: str | None = None
    version: str | None = None
    error: str | None = None  # the current error, if the file does not load


class PolicySet:
    def __init__(
        self,
        directory: Path,
        recipients: Mapping[str, str],
        registered: Callable[[], list[RegisteredDevice]],
    ) -> None:
        self.directory = directory
        self.recipients = dict(recipients)
        self._registered = registered
        self.files: dict[Path, LoadedFile] = {}

    def load_all(self) -> list[CompiledPolicy]:
        """Load every file; returns the compiled policies that loaded."""
        compiled: list[CompiledPolicy] = []
        for path in sorted(self.directory.glob("*.yaml")):
            result = self.load(path)
            if result is not None:
                compiled.append(result)
        return compiled

    def load(self, path: Path) -> CompiledPolicy | None:
        """Load and compile one file; on error record it and return None."""
        try:
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            self.files[path] = LoadedFile(path, 0, error=f"{path}: cannot read: {exc.strerror}")
            return None
        entry = self.files.get(path) or LoadedFile(path, mtime)
        entry.mtime_ns = mtime
        self.files[path] = entry
        try:
            document = self._with_registered(load_policy(path))
            policy = compile_policy(document, self.recipients)
        except PolicyError as exc:
            entry.error = str(exc)
            log.error(
                "policy %s does not load; %s: %s",
                path.name,
                "keeping the last good version"
                if entry.version
                else "nothing of this customer is shared",
                exc,
            )
            return None
        entry.error = None
        entry.customer = policy.customer
        entry.version = policy.version
        return policy

    def changed(self) -> list[Path]:
        """Files that are new or modified since they were last loaded."""
        paths = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                continue
            known = self.files.get(path)
            if known is None or known.mtime_ns != mtime:
                paths.append(path)
        return paths

    def errors(self) -> list[str]:
        return [f.error for f in self.files.values() if f.error]

    def _with_registered(self, document: PolicyDocument) -> PolicyDocument:
        """Add devices registered for this customer that the policy does not declare yet."""
        declared = {d.id for d in document.devices}
        extra = [
            DeviceSpec(
                id=d.device,
                name=d.name,
                kind=d.kind,
                topics=[TopicSpec(pattern=p, stream=s) for p, s in d.topics],
            )
            for d in self._registered()
            if d.customer == document.customer and d.device not in declared and d.topics
        ]
        if not extra:
            return document
        return document.model_copy(update={"devices": [*document.devices, *extra]})
