"""A CPU quota for one process, through the kernel's control groups: a slower core on demand.

``einblick bench --instances N --cpu-per-instance 0.25`` puts each instance in its own group
limited to a quarter of one core. On a box with fewer cores than instances plus brokers, that
is how scaling with instances can be shown at all: each instance gets a budget standing in for
its own (slower) core, and the figure says whether n budgets carry n times one budget's
messages or whether something shared (the broker, the disk, the machine) is the limit instead.
The same limit is what an installer sets with systemd's ``CPUQuota=`` to keep one instance to
its share of a box.

Both layouts of the control-group file system are handled: v2 (one ``cpu.max`` file, "quota
period" in microseconds) and v1 (a ``cpu`` hierarchy with ``cpu.cfs_quota_us`` and
``cpu.cfs_period_us``). Creating groups needs write access to the hierarchy (root, or a
delegated subtree); without it the bench refuses with what to do instead.

How much a limit bound is read back from the group's ``cpu.stat``: the periods in which the
group ran out of its quota (``nr_throttled`` of ``nr_periods``). A limit that never throttled
did not shape the figure.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuQuota", "QuotaError", "Throttling", "cgroup_root"]

PERIOD_US = 100_000  # the kernel's default period: the quota is spent in 100 ms slices

# Where the hierarchies are mounted on Debian and most distributions.
_V2 = Path("/sys/fs/cgroup")
_V1_CPU = Path("/sys/fs/cgroup/cpu")
_V2_HYBRID = Path("/sys/fs/cgroup/unified")


class QuotaError(RuntimeError):
    """The limit cannot be set up here; the message says why and what to do instead."""


@dataclass(frozen=True, slots=True)
class Throttling:
    periods: int  # 100 ms periods in which the group wanted to run
    throttled: int  # of them, those in which it used up its quota and had to wait

    @property
    def share(self) -> float:
        return self.throttled / self.periods if self.periods else 0.0


def cgroup_root() -> tuple[Path, int]:
    """(directory, version) of the hierarchy that controls CPU time here.

    A v2 hierarchy counts only if its ``cpu`` controller is enabled for children; a hybrid
    system (v1 controllers plus an empty v2 tree at ``unified``) uses its v1 ``cpu`` tree."""
    if (_V2 / "cgroup.controllers").is_file():
        if "cpu" in (_V2 / "cgroup.subtree_control").read_text().split():
            return _V2, 2
        raise QuotaError(
            f"{_V2}: the cpu controller is not enabled for child groups; as root: "
            f"echo +cpu > {_V2 / 'cgroup.subtree_control'}"
        )
    if (_V1_CPU / "cpu.cfs_quota_us").is_file():
        return _V1_CPU, 1
    raise QuotaError(
        "no control group hierarchy with a cpu controller at /sys/fs/cgroup (v2) or "
        "/sys/fs/cgroup/cpu (v1): this kernel or container cannot limit a process's CPU; "
        "run the bench without --cpu-per-instance"
    )


class CpuQuota:
    """One control group allowing ``cores`` of CPU time (0.25 = a quarter of one core);
    processes moved in are limited from then on. ``close`` moves nobody and removes the
    group once it is empty (a stopped process leaves it by itself)."""

    def __init__(self, name: str, cores: float, *, root: Path | None = None, version: int = 0):
        if not 0.01 <= cores <= (os.cpu_count() or 1):
            raise QuotaError(
                f"a CPU limit of {cores} cores: give a share between 0.01 and this machine's "
                f"{os.cpu_count()} cores"
            )
        if root is None:
            root, version = cgroup_root()
        self.cores = cores
        self.version = version
        self.path = root / name
        quota = max(1_000, round(cores * PERIOD_US))  # the kernel refuses below 1 ms
        try:
            self.path.mkdir(exist_ok=True)
            if version == 2:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:  # no permission, a read-only hierarchy (a container), …
            raise QuotaError(
                f"{self.path}: cannot set up a control group ({exc.strerror}); run the bench "
                "as root on the box itself, or without --cpu-per-instance"
            ) from exc

    def add(self, pid: int) -> None:
        """Move process ``pid`` (every thread of it) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttling(self) -> Throttling:
        fields = dict(
            line.split(maxsplit=1) for line in (self.path / "cpu.stat").read_text().splitlines()
        )
        return Throttling(int(fields.get("nr_periods", 0)), int(fields.get("nr_throttled", 0)))

    def close(self) -> None:
        # A group still holding a process cannot be removed; its processes have stopped by now,
        # and a group left behind is harmless and reused by the next run of the same name.
        with contextlib.suppress(OSError):
            self.path.rmdir()
