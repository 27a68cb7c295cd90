"""Which policy runs: the engine's one owner admits each customer's compiled policy beside the
others, refuses a second file for one customer, and swaps in a changed file while running.

A file that does not load, or cannot run beside the others, stops only its own customer (withheld,
"policy not loaded"), never the box; its error is kept on the policy set for ``einblick status``.
A file removed while running (missing at two scans a second apart) stops its customer's policy
(``forget``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gateway.messages.contested import Contested, claims_of
from gateway.messages.policyset import PolicySet, present
from gateway.messages.pseudonyms import Keyring
from policies.compiler import CompiledPolicy
from policies.engine import Engine
from policies.errors import PolicyError

__all__ = ["PolicyAdmission"]

log = logging.getLogger(__name__)


class _RenameWaits(PolicyError):
    """A second file for a customer whose running file is gone since the last scan: most likely
    a rename. Not an installer's mistake, so not said as one; it applies at the next scan if the
    old file is still gone then (``forget``)."""


class PolicyAdmission:
    """The running engine and the policy files it runs."""

    def __init__(
        self, policies: PolicySet, *, restored: Callable[[str], None], cluster: bool = False
    ) -> None:
        self.policies = policies
        # In a cluster the engine asks ``disowned`` of every topic it resolves.
        self._cluster = cluster
        self._contested: tuple[tuple[int, int], Contested] | None = None
        self._asked: tuple[tuple[int, int], str, bool] | None = None
        self._warned: set[str] = set()
        # Called with the customer after a new version of their policy runs: their consents
        # withdrawn in earlier runs still hold, also for a grant this version brings back.
        self._restored = restored
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the gateway is not started"
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None

    def start(self, keyring: Keyring) -> Sequence[CompiledPolicy]:
        """At start, one file at a time: run each beside those already admitted, or refuse it
        alone. Returns the policies that run."""
        self._engine = Engine([], keyring)
        if self._cluster:
            self._engine.disowned = self.disowned
        for path, policy in self.policies.load_each():
            try:
                self._check_single_file(path, policy)
                self._engine.replace(policy)
                self.policies.accepted(path, policy.version)
            except PolicyError as exc:
                self.policies.refuse_at_start(path, str(exc))
        return self._engine.policies()

    def disowned(self, topic: str) -> bool:
        """Whether another instance's customer ranks first for ``topic`` (contested.py): this
        instance's claims are the patterns of the policies it runs and of its customers' files
        that do not run, whose messages it records."""
        key = (self.engine.generation, self.policies.revision)
        if self._asked is not None and self._asked[:2] == (key, topic):
            return self._asked[2]  # a message's not-loaded check, then its evaluation
        if self._contested is None or self._contested[0] != key:
            ours = claims_of(self.engine.policies())
            ours += self.policies.not_loaded_claims(self.running)
            contested = Contested(ours, self.policies.theirs())
            for line in contested.warnings():  # each pair this instance gives up, once
                if line not in self._warned:
                    self._warned.add(line)
                    log.warning("%s", line)
            self._contested = (key, contested)
        answer = self._contested[1].disowns(topic)
        self._asked = (key, topic, answer)
        return answer

    def running(self, customer: str) -> bool:
        return self._engine is not None and self._engine.policy(customer) is not None

    def not_loaded(self, topic: str) -> tuple[str, str, str] | None:
        """(customer, device, stream) when ``topic`` belongs to a customer whose policy is not
        running (it did not load at start and has not loaded since)."""
        if self._cluster and self.disowned(topic):
            return None  # another instance's customer's: withheld as such, attributed to no one
        return self.policies.not_loaded(topic, self.running)

    def declared_topics(self) -> dict[tuple[str, str], list[str]]:
        """(customer, device) -> the topic patterns it publishes under, for the broker's ACL."""
        topics: dict[tuple[str, str], list[str]] = {}
        if self._engine is None:
            return topics
        for policy in self._engine.policies():
            for declared in policy.devices:
                topics[(policy.customer, declared.id)] = [
                    t.pattern.pattern for t in declared.topics
                ]
        # A customer whose policy is not running still publishes where it last did: their
        # messages must reach the gateway to be recorded as withheld, not vanish at the ACL.
        for key, patterns in self.policies.not_loaded_topics(self.running).items():
            topics.setdefault(key, patterns)
        return topics

    def _check_single_file(self, path: Path, policy: CompiledPolicy) -> None:
        """Two files for one customer: the second would silently replace the first. (A file
        renamed is refused under its new name until the old one is taken for removed: ``forget``
        then applies it.)"""
        running = self._engine.policy(policy.customer) if self._engine is not None else None
        if running is not None and running.source != policy.source:
            if not present(Path(running.source)):
                raise _RenameWaits(
                    str(path),
                    f"waits a second: customer {policy.customer!r}'s running policy file "
                    f"{Path(running.source).name} is gone since the last scan; if it is still "
                    "gone at the next one it counts as removed and this file applies (a rename)",
                    key="customer",
                )
            raise PolicyError(
                str(path),
                f"customer {policy.customer!r} already has a policy ({running.source}); "
                "one file per customer: merge them or remove one",
                key="customer",
            )

    def apply(self, path: Path) -> bool:
        """Load, compile and run one policy file in place of its running version; False (and
        the error recorded for status) when it does not load or cannot run beside the others.
        Compiling reads the registry too (gateway/messages/policyset.py adds registered devices
        the file does not declare), so this is also how a device registration reaches the
        engine."""
        compiled = self.policies.load(path)
        if compiled is None:
            return False
        try:
            self._check_single_file(path, compiled)
            self.engine.replace(compiled)
            self.policies.accepted(path, compiled.version)
        except PolicyError as exc:
            self.policies.files[path].error = str(exc)
            waits = isinstance(exc, _RenameWaits)
            if waits:  # tried again at the next scan, or its words would outlive their truth
                self.policies.files[path].mtime_ns = 0
            how = "not applied yet" if waits else "not applied"
            log.log(
                logging.INFO if waits else logging.ERROR, "policy %s %s: %s", path.name, how, exc
            )
            return False
        self._restored(compiled.customer)
        log.info("policy %s applied: version %s", path.name, self.policies.files[path].version)
        return True

    def recompile(self, customers: Iterable[str] | None = None) -> None:
        """Compile again the policies of ``customers`` (all when None): after a registry change,
        so a new device is decided under its customer's policy from its first message and a
        removed one no longer is; after a recipient change, since grants name recipients."""
        self.policies.registry_changed()
        if self._engine is None:
            return
        wanted = None if customers is None else set(customers)
        for path, loaded in sorted(self.policies.files.items()):
            if (wanted is None or loaded.customer in wanted) and present(path):
                self.apply(path)

    def forget(self) -> bool:
        """Stop the policies whose files were removed (``PolicySet.removed``); True if any ran.
        A removed file whose customer runs from another file (a rename), or did not run at all,
        is only forgotten. Another file of the customer refused beside the removed one is
        tried again: it may run now."""
        stopped = False
        for entry in self.policies.removed():
            running = self.engine.policy(entry.customer) if entry.customer else None
            if running is None or running.source != str(entry.path):
                self.policies.drop(entry.path)
                continue
            self.policies.mark_removed(entry)
            # Open aggregation windows close now: the next flush records them withheld (the
            # engine has no policy for them), not kept in memory.
            self.engine.replace(running)
            self.engine.remove(running.customer)
            stopped = True
            for path, other in sorted(self.policies.files.items()):
                if other.customer == running.customer and other is not entry and present(path):
                    self.apply(path)
            now = self.engine.policy(running.customer)
            if now is None:
                log.error("%s", entry.error)
            else:
                log.warning("policy %s was removed; %s runs now", entry.path, now.source)
        return stopped

    async def watch(self, on_applied: Callable[[], None]) -> None:
        """Apply removed and changed files each second; ``on_applied`` after any change (the
        ACL follows)."""
        while True:
            await asyncio.sleep(1.0)
            stopped = self.forget()
            applied = [path for path in self.policies.changed() if self.apply(path)]
            if applied or stopped:
                on_applied()
