"""A CPU limit per bench instance: the files a control group is set up by, in both layouts.

The kernel's hierarchy is stood in for by a folder of the same files (a group's control files
are plain files to a writer), so what is written, and what is refused, is checked on any box."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bench import cpu_quota
from gateway.bench.cpu_quota import CpuQuota, QuotaError, cgroup_root


def test_v2_writes_quota_and_period_into_cpu_max(tmp_path: Path) -> None:
    quota = CpuQuota("bench-a", 0.25, root=tmp_path, version=2)
    assert (tmp_path / "bench-a" / "cpu.max").read_text() == "25000 100000"
    quota.add(4242)
    assert (tmp_path / "bench-a" / "cgroup.procs").read_text() == "4242"


def test_v1_writes_period_and_quota_files(tmp_path: Path) -> None:
    CpuQuota("bench-b", 1.5, root=tmp_path, version=1)
    group = tmp_path / "bench-b"
    assert (group / "cpu.cfs_period_us").read_text() == "100000"
    assert (group / "cpu.cfs_quota_us").read_text() == "150000"


def test_throttling_is_read_from_cpu_stat(tmp_path: Path) -> None:
    quota = CpuQuota("bench-c", 0.5, root=tmp_path, version=1)
    (quota.path / "cpu.stat").write_text(
        "nr_periods 40\nnr_throttled 30\nthrottled_time 2094944238\n"
    )
    throttling = quota.throttling()
    assert (throttling.periods, throttling.throttled, throttling.share) == (40, 30, 0.75)
    (quota.path / "cpu.stat").write_text("nr_periods 0\nnr_throttled 0\n")
    assert quota.throttling().share == 0.0  # never ran: not "always throttled"


def test_close_removes_an_empty_group_and_leaves_a_busy_one(tmp_path: Path) -> None:
    empty = CpuQuota("bench-d", 0.5, root=tmp_path, version=2)
    (empty.path / "cpu.max").unlink()  # the kernel's files vanish with the group
    empty.close()
    assert not empty.path.exists()
    busy = CpuQuota("bench-e", 0.5, root=tmp_path, version=2)
    busy.close()  # files inside: rmdir fails, as for a group still holding a process
    assert busy.path.exists()


@pytest.mark.parametrize("cores", [0.0, 0.001, 10_000.0])
def test_a_limit_outside_what_the_machine_has_is_refused(tmp_path: Path, cores: float) -> None:
    with pytest.raises(QuotaError, match=r"give a share between 0\.01 and"):
        CpuQuota("bench-f", cores, root=tmp_path, version=2)
    assert not (tmp_path / "bench-f").exists()


def test_a_group_that_cannot_be_set_up_says_where_and_what_to_do(tmp_path: Path) -> None:
    # A control file that cannot be written (here a folder in its place; on a box: no
    # permission, or a read-only hierarchy in a container) is refused, naming the group.
    (tmp_path / "bench-g" / "cpu.max").mkdir(parents=True)
    with pytest.raises(QuotaError) as refused:
        CpuQuota("bench-g", 0.5, root=tmp_path, version=2)
    assert str(tmp_path / "bench-g") in str(refused.value)
    assert "run the bench as root on the box itself, or without --cpu-per-instance" in str(
        refused.value
    )


def test_the_layout_is_found_or_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    monkeypatch.setattr(cpu_quota, "_V2", v2)
    monkeypatch.setattr(cpu_quota, "_V1_CPU", v1)
    with pytest.raises(QuotaError, match="cannot limit a process's CPU"):
        cgroup_root()
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_root() == (v1, 1)  # hybrid: v1's cpu tree
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids")
    (v2 / "cgroup.subtree_control").write_text("memory pids")
    with pytest.raises(QuotaError, match=r"echo \+cpu >"):
        cgroup_root()
    (v2 / "cgroup.subtree_control").write_text("cpu memory pids")
    assert cgroup_root() == (v2, 2)
