"""The customers' policy files as the running gateway holds them: loaded, compiled, hot-reloaded.

Each ``*.yaml`` in the policies directory is one customer's policy. A changed file applies to the
next message. A file that no longer loads keeps its last good version running, and the error —
file, line, column, key — is shown by ``einblick status``, the TUI and the gateway's log until the
file is fixed. A customer whose file never loaded has no policy: everything of theirs is withheld.
A file removed while running stops its policy (``removed``; the admission acts on it): a removed
file is how an installer stops a customer's sharing, and a restart would not find it either. It
must be missing at two scans in a row (a second apart), so a file rewritten by deleting and
writing it again is not taken for removed. Its shape stays, so the customer's messages are still
recorded (withheld, "no policy in force"), and the error says what happened until a file for the
customer runs again, under any name.

A file that does not load when the gateway starts stops only its own customer. So that their
devices' messages are still recorded (withheld, "policy not loaded") rather than lost as unknown,
the set remembers each file's *shape* — its customer and which device owns which topic — from the
last time it loaded (``policy-shapes.json`` in the data directory), or, for a file that never
loaded, reads what it can of it. The shape decides nothing: it only says whose message it is.

A shape's topics also go into the broker's ACL (the device may go on publishing, so its messages
are recorded). A shape from a load passed the engine's checks; a shape *read* from a broken file
passed none, so its topics count only where ``claimable`` allows them: a valid pattern whose
first level is not a wildcard, inside the customer's own prefix when it lies in the registry's
namespace (``gateway.devices.registry.check_topic``), and overlapping no topic of another customer (their
policies, remembered shapes and registered devices). Without this, a broken file declaring ``#``
or another customer's topic would give its device write access there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import JsonValue, TypeAdapter, ValidationError

from gateway.devices.registry import (
    RegisteredDevice,
    check_namespace,
    foreign_namespace,
)
from gateway.messages.contested import Claim
from gateway.messages.policy_shape import (
    SavedShape,
    Shape,
    named,
    read_refusal,
    read_shape,
    valid_pattern,
)
from policies.compiler import CompiledPolicy, compile_policy
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.model import DeviceSpec, PolicyDocument, TopicSpec
from policies.topics import namespace_owner

__all__ = ["LoadedFile", "PolicySet", "present"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadedFile:
    path: Path
    mtime_ns: int
    customer: str | None = None
    version: str | None = None
    error: str | None = None  # the current error, if the file does not load (or was removed)
    removed: bool = False  # the file is gone; its policy no longer runs (``PolicySet.removed``)
    missing: bool = False  # not found at the last scan (removed if still missing at the next)
    candidate: Shape | None = None  # compiled and not yet run (``PolicySet.accepted``)
    shape: Shape | None = None  # whose topics these are, known even while the file is broken


# The file as a whole: file name -> one entry, each read on its own (``_read_shapes``).
_SHAPES_FILE: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


class PolicySet:
    def __init__(
        self,
        directory: Path,
        recipients: Mapping[str, str],
        registered: Callable[[], list[RegisteredDevice]],
        shapes_path: Path | None = None,
        owns: Callable[[str], bool] = lambda _customer: True,
    ) -> None:
        self.directory = directory
        # In a cluster (gateway/cluster.py) the policies directory is shared; a file whose
        # customer another instance owns is neither run nor reported here: path -> its mtime
        # (read again only when it changes: its customer may have changed) and its customer.
        self._owns = owns
        self.elsewhere: dict[Path, tuple[int, str]] = {}
        self.recipients = dict(recipients)
        self._registered = registered
        self.files: dict[Path, LoadedFile] = {}
        self._shapes_path = shapes_path
        self._shapes: dict[str, SavedShape] = self._read_shapes()
        self._refused: set[tuple[Path, str]] = set()  # read patterns already logged as refused
        # ``claimable`` per file, asked for every message of a customer whose policy is not
        # running (a device may send many): each answer looks at every other customer's topics.
        # Forgotten whenever a file loads, is set aside or removed, or the registry changes.
        self._claims: dict[Path, list[tuple[str, str, str]]] = {}
        # Each file's claims for gateway/messages/contested.py: (customer, claims, whether they
        # come from a version that compiled); a set-aside file's are kept when it turns
        # unreadable or disappears, as its owner goes on attributing by its shape.
        self._read_claims: dict[Path, tuple[str, list[Claim], bool]] = {}
        self.revision = 0  # moves with every change that may change what is claimed

    def _changed(self) -> None:
        self._claims.clear()
        self.revision += 1

    def load_all(self) -> list[CompiledPolicy]:
        """Load every file; returns the compiled policies that loaded."""
        return [policy for _, policy in self.load_each()]

    def load_each(self) -> list[tuple[Path, CompiledPolicy]]:
        """Load every file; returns the compiled policies that loaded, with their files."""
        compiled: list[tuple[Path, CompiledPolicy]] = []
        for path in sorted(self.directory.glob("*.yaml")):
            result = self.load(path)
            if result is not None:
                compiled.append((path, result))
        return compiled

    def _leave_to_owner(self, path: Path, customer: str | None, mtime: int) -> bool:
        """True (and the file set aside) when another instance owns ``customer``."""
        if customer is None and path in self.elsewhere:
            customer = self.elsewhere[path][1]  # unreadable now: still whose it said last
        if customer is None or self._owns(customer):
            self.elsewhere.pop(path, None)
            return False
        self.files.pop(path, None)
        self.elsewhere[path] = (mtime, customer)
        log.info("policy %s: customer %r belongs to another instance", path.name, customer)
        return True

    def load(self, path: Path) -> CompiledPolicy | None:
        """Load and compile one file; on error record it and return None."""
        self._changed()
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None  # gone since it was listed: ``removed`` acts on it at its scans
        except OSError as exc:
            # Whose file it is and what runs from it stay known: only the error is new.
            entry = self.files.setdefault(path, LoadedFile(path, 0))
            entry.error = f"{path}: cannot read: {exc.strerror}"
            return None
        entry = self.files.get(path) or LoadedFile(path, mtime)
        entry.mtime_ns = mtime
        entry.removed = entry.missing = False
        self.files[path] = entry
        try:
            document = self._with_registered(load_policy(path))
            check_namespace(str(path), document)
            # Another instance's customer: compiled with the recipients its file names, which
            # that instance has (this one may not), to know what it runs (contested.py).
            mine = self._owns(document.customer)
            policy = compile_policy(document, self.recipients if mine else named(document))
        except PolicyError as exc:
            entry.error = str(exc)
            read = read_shape(path)
            self._read(path, read, compiled=False)
            if entry.version is None:  # never loaded in this run: whose file is it?
                entry.shape = self._remembered(path) or read
                if entry.shape is not None:
                    entry.customer = entry.shape.customer
                if self._leave_to_owner(path, entry.customer, mtime):
                    return None
            now = "its last good version runs" if entry.version else "this customer shares nothing"
            log.error("policy %s does not load; %s: %s", path.name, now, exc)
            return None
        topics = [(t.pattern.pattern, d.id, t.stream) for d in policy.devices for t in d.topics]
        candidate = Shape.of(policy.customer, topics, loaded=False)
        self._read(path, candidate, compiled=True)
        if self._refused_edit(entry, policy.customer):
            entry.error = (
                f"{path}: names customer {policy.customer!r}, whose policy another instance "
                f"runs; the last good version of {entry.customer!r} keeps running here (a "
                "customer moves with einblick handover; another customer needs its own file)"
            )
            log.error("policy %s not applied: %s", path.name, entry.error)
            return None
        if self._leave_to_owner(path, policy.customer, mtime):
            return None
        entry.error = None
        # Trusted (``loaded``), remembered and its version shown only once the engine runs it
        # (``accepted``): one it refuses (topics overlapping another customer's) claims only what
        # no rule refuses, and a refused edit leaves the running version's shape in place.
        entry.candidate = candidate
        if entry.version is None:
            # Nothing of it runs: this is all that says whose it is. (Else the running version
            # says it, until this one runs: a refused edit naming another customer changes
            # neither.)
            entry.customer = policy.customer
            entry.shape = entry.candidate
        return policy

    def accepted(self, path: Path, version: str) -> None:
        """``path``'s policy, just loaded, runs (at ``version``): its topics are its own, and
        remembered; a removed file of its customer is no longer said."""
        self._changed()
        entry = self.files[path]
        entry.version = version
        if entry.candidate is not None:
            entry.customer = entry.candidate.customer
            entry.shape = dataclasses.replace(entry.candidate, loaded=True)
            entry.candidate = None
            self._remember(path, entry.shape)
        for other, gone in list(self.files.items()):
            if gone.removed and gone.customer == entry.customer:
                del self.files[other]

    def refuse_at_start(self, path: Path, error: str) -> None:
        """A file that compiled but cannot run beside the others (it claims a customer or topics
        another file has): at start there is no earlier version of it to keep."""
        self._changed()
        entry = self.files[path]
        entry.error = error
        entry.version = None
        log.error("policy %s not applied; nothing of this customer is shared: %s", path.name, error)

    def _refused_edit(self, entry: LoadedFile, customer: str) -> bool:
        """Whether ``customer`` is another instance's while ``entry``'s policy runs here."""
        return bool(entry.version) and self._owns(entry.customer or "") and not self._owns(customer)

    def _read(self, path: Path, shape: Shape | None, *, compiled: bool) -> None:
        """``path``'s claims: a compiled version's until another compiles (its owner runs the
        last good one through a broken edit), else every valid pattern as read; unreadable: as
        before. An edit naming another customer adds to another instance's customer's claims:
        that instance may refuse it and run its last good version on (``_refused_edit``)."""
        if shape is None:
            return
        before = self._read_claims.get(path)
        if not compiled and before is not None and before[2] and before[0] == shape.customer:
            return
        claims = [
            Claim(shape.customer, pattern, path.name)
            for (text, _, _), pattern in zip(shape.topics, shape.patterns, strict=True)
            if compiled or valid_pattern(text)
        ]
        if before is not None and before[0] != shape.customer and not self._owns(before[0]):
            claims += [c for c in before[1] if c.customer != shape.customer]
        for gone in [p for p, (c, _, _) in self._read_claims.items() if c == shape.customer]:
            if gone != path and not present(gone):
                del self._read_claims[gone]  # its customer's file now: as ``accepted`` forgets
        self._read_claims[path] = (shape.customer, claims, compiled)

    def theirs(self) -> list[Claim]:
        """What the files of customers other instances run claim (contested.py)."""
        every = (claim for _, claims, _ in self._read_claims.values() for claim in claims)
        return [claim for claim in every if not self._owns(claim.customer)]

    def served_elsewhere(self, customer: str) -> bool:
        """Whether a file set aside here is ``customer``'s: another instance runs its policy."""
        return any(other == customer for _, other in self.elsewhere.values())

    def not_loaded(self, topic: str, running: Callable[[str], bool]) -> tuple[str, str, str] | None:
        """(customer, device, stream) of a message whose customer's policy is not running."""
        owner = namespace_owner(topic)
        for entry, shape in self._not_running(running):
            if owner not in (None, shape.customer):
                continue  # another customer's namespace: never this file's (policies.routes)
            hit = shape.match(topic, frozenset(p for p, _, _ in self.claimable(entry)))
            if hit is not None:
                return shape.customer, hit[0], hit[1]
        return None

    def not_loaded_topics(self, running: Callable[[str], bool]) -> dict[tuple[str, str], list[str]]:
        """(customer, device) -> topic patterns, for customers whose policy is not running: the
        broker must still let their devices publish, so their messages are recorded."""
        out: dict[tuple[str, str], list[str]] = {}
        for entry, shape in self._not_running(running):
            for pattern, device, _ in self.claimable(entry):
                out.setdefault((shape.customer, device), []).append(pattern)
        return out

    def not_loaded_claims(self, running: Callable[[str], bool]) -> list[Claim]:
        """What files of customers whose policy is not running claim (contested.py)."""
        claims: list[Claim] = []
        for entry, shape in self._not_running(running):
            compiled = dict(zip((text for text, _, _ in shape.topics), shape.patterns, strict=True))
            claimed = (compiled[text] for text, _, _ in self.claimable(entry))
            claims += [Claim(shape.customer, pattern, entry.path.name) for pattern in claimed]
        return claims

    def _not_running(self, running: Callable[[str], bool]) -> Iterator[tuple[LoadedFile, Shape]]:
        for entry in self.files.values():
            if entry.error is not None and entry.shape and not running(entry.shape.customer):
                yield entry, entry.shape

    def registry_changed(self) -> None:
        """The registry changed: a file that never loaded may no longer claim what it did."""
        self._changed()

    def claimable(self, entry: LoadedFile) -> list[tuple[str, str, str]]:
        """The (pattern, device, stream) of ``entry``'s shape that may reach the broker's ACL and
        attribute messages: a loaded shape's all, a read shape's only those no rule refuses."""
        known = self._claims.get(entry.path)
        if known is None:
            known = self._claims[entry.path] = self._claimable(entry)
        return known

    def _claimable(self, entry: LoadedFile) -> list[tuple[str, str, str]]:
        shape = entry.shape
        if shape is None:
            return []
        if shape.loaded:
            # A shape remembered from a run before the namespace rule (check_namespace) may
            # still reach into another customer's namespace: never into the broker.
            return [t for t in shape.topics if foreign_namespace(shape.customer, t[0]) is None]
        others = [
            (other.shape.customer, pattern, f"{other.path.name}")
            for other in self.files.values()
            if other is not entry
            and other.shape is not None
            and other.shape.customer != shape.customer
            for pattern, _, _ in other.shape.topics
        ]
        others += [
            (device.customer, pattern, f"registered device {device.device!r}")
            for device in self._registered()
            if device.customer != shape.customer
            for pattern, _ in device.topics
        ]
        kept = []
        for pattern, device, stream in shape.topics:
            why = read_refusal(shape.customer, device, pattern, others)
            if why is None:
                kept.append((pattern, device, stream))
            elif (entry.path, pattern) not in self._refused:
                self._refused.add((entry.path, pattern))
                log.error(
                    "%s does not load, and its topic %r for device %r is not let into the "
                    "broker: %s. Messages there are refused by the broker until the file loads; "
                    "fix the file (see the error above)",
                    entry.path,
                    pattern,
                    device,
                    why,
                )
        return kept

    # -- shapes ----------------------------------------------------------------------------------

    def _read_shapes(self) -> dict[str, SavedShape]:
        if self._shapes_path is None:
            return {}
        try:
            data = _SHAPES_FILE.validate_json(self._shapes_path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValidationError) as exc:
            log.warning(
                "%s unreadable (%s); starting without remembered policy shapes",
                self._shapes_path,
                exc,
            )
            return {}
        shapes = {}
        for name, entry in data.items():
            # One damaged entry costs only its own file's shape (that file's topics are then
            # refused until it loads), never the others'.
            try:
                shapes[name] = SavedShape.model_validate(entry)
            except ValidationError as exc:
                log.warning(
                    "%s: the remembered shape of %s is damaged (%s); forgotten until it loads",
                    self._shapes_path,
                    name,
                    exc.errors()[0]["msg"],
                )
        return shapes

    def _remembered(self, path: Path) -> Shape | None:
        saved = self._shapes.get(path.name)
        return None if saved is None else Shape.of(saved.customer, list(saved.topics))

    def _remember(self, path: Path, shape: Shape) -> None:
        saved = shape.saved()
        if self._shapes_path is None or self._shapes.get(path.name) == saved:
            return
        self._shapes[path.name] = saved
        temporary = self._shapes_path.with_suffix(".tmp")
        try:
            # Owner-only like everything in the data directory, whatever the umask.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(
                    orjson.dumps({n: s.model_dump(mode="json") for n, s in self._shapes.items()})
                )
            os.replace(temporary, self._shapes_path)
        except OSError as exc:  # only attribution after a later broken restart depends on it
            log.warning(
                "cannot remember the shape of %s in %s: %s", path.name, self._shapes_path, exc
            )
            with contextlib.suppress(OSError):
                temporary.unlink()

    def changed(self) -> list[Path]:
        """Files that are new or modified since they were last loaded."""
        paths = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                continue
            known = self.files.get(path)
            if self.elsewhere.get(path, (None,))[0] == mtime:
                continue
            if known is None or known.mtime_ns != mtime:
                paths.append(path)
        return paths

    def removed(self) -> list[LoadedFile]:
        """Files loaded (or tried) in this run that were missing at this scan and the one
        before (the module text), each returned once; the admission says what follows."""
        for path in [p for p in self.elsewhere if not present(p)]:
            del self.elsewhere[path]  # another instance's customer: not ours to report
            customer = self._read_claims.get(path, ("",))[0]
            if any(c == customer and present(p) for p, (c, _, _) in self._read_claims.items()):
                del self._read_claims[path]  # its customer has another file: that one claims
                self._changed()
        gone: list[LoadedFile] = []
        for path, entry in sorted(self.files.items()):
            if entry.removed:
                continue
            if present(path):
                entry.missing = False
            elif not entry.missing:
                entry.missing = True  # at the next scan, if still missing
            else:
                gone.append(entry)
        return gone

    def mark_removed(self, entry: LoadedFile) -> None:
        """``entry``'s file is gone and its policy stopped: no version, and an error for
        ``einblick status`` that says what that means, until the customer runs again."""
        self._changed()
        self._read_claims.pop(entry.path, None)
        entry.removed = True
        entry.version = None
        entry.mtime_ns = 0  # a file put back is new, whatever its time
        entry.error = (
            f"{entry.path}: the policy file was removed, so nothing of customer "
            f"{entry.customer!r} is shared (their devices' messages are recorded as withheld); "
            f"put a policy file for them into {self.directory} to share again"
        )

    def drop(self, path: Path) -> None:
        """Forget a removed file whose policy did not run: nothing to stop, nothing to say."""
        self._changed()
        self._read_claims.pop(path, None)
        self.files.pop(path, None)

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


def present(path: Path) -> bool:
    """Whether ``path`` is there; a file that cannot be looked at (a directory made unreadable)
    counts as there: only a file certainly gone stops its customer, and the watcher never
    ends on it (``load`` reports the error)."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False  # certainly gone (a directory on its path replaced by a file included)
    except OSError:
        return True
    return True
