"""One view over several instances: export and report read the one log that holds a customer's
history, and refuse, saying what to do, when the instances do not add up to one history."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.log.keys import Signer
from gateway.log.transfer import adopt_tree, close_tree, open_tree_record, read_tree
from gateway.messages.subscriptions import cluster_subscriptions
from gateway.operations.cluster import ClusterViewError, check_ownership, holder, load_instances
from tests.log.conftest import Log, make_draft

INSTANCES = ("hall-a", "hall-b", "hall-c")
REPO = Path(__file__).resolve().parents[2]


def cluster_block(listed: dict[str, str]) -> str:
    members = "".join(
        f"    - name: {n}\n      customers: [{listed.get(n, '')}]\n" for n in INSTANCES
    )
    return f"cluster:\n  instances:\n{members}"


def instance(root: Path, name: str, block: str) -> Path:
    directory = root / name
    directory.mkdir()
    path = directory / "einblick.yaml"
    path.write_text(
        f"einblick_config: 1\ninstance: {name}\ndata_dir: data\n"
        "broker:\n  mode: external\n  port: 1884\n" + block,
        encoding="utf-8",
    )
    return path


def write_tree(path: Path, customer: str, origin: str) -> None:
    config = load_config(path)
    config.signing_key_path.parent.mkdir(parents=True, exist_ok=True)
    signer = Signer.generate(config.signing_key_path)
    config.signing_key_path.with_suffix(".pub").write_text(signer.public.pem(), encoding="utf-8")
    log = Log(config.database_path, signer, origin)
    try:
        log.write([make_draft(i, customer) for i in range(4)])
    finally:
        log.close()


@pytest.fixture
def cluster(tmp_path: Path) -> list[Path]:
    block = cluster_block({"hall-a": "werk-a", "hall-b": "werk-b"})
    return [instance(tmp_path, n, block) for n in INSTANCES]


def test_the_customers_history_is_read_from_its_owner(cluster: list[Path]) -> None:
    write_tree(cluster[1], "werk-b", "hall-b")
    configs = load_instances(cluster)
    assert holder(configs, "werk-b").instance == "hall-b"
    assert holder(configs, "werk-a").instance == "hall-a"  # no entries yet: the owner's log


def test_a_tree_in_two_instances_logs_is_refused(cluster: list[Path]) -> None:
    write_tree(cluster[1], "werk-b", "hall-b")
    write_tree(cluster[2], "werk-b", "hall-c")
    with pytest.raises(
        ClusterViewError, match=r"trees in several instances' logs \(hall-b, hall-c\)"
    ):
        holder(load_instances(cluster), "werk-b")


def test_a_tree_outside_its_owner_is_refused(cluster: list[Path]) -> None:
    write_tree(cluster[2], "werk-b", "hall-c")
    with pytest.raises(ClusterViewError, match="assigns the customer to 'hall-b'"):
        holder(load_instances(cluster), "werk-b")


def test_instances_with_different_assignments_are_refused(cluster: list[Path]) -> None:
    other = cluster[2].read_text(encoding="utf-8").replace("[werk-b]", "[werk-x]")
    cluster[2].write_text(other, encoding="utf-8")
    with pytest.raises(ClusterViewError, match="cluster: section differs"):
        load_instances(cluster)


def test_the_owner_must_be_among_the_instances_given(cluster: list[Path]) -> None:
    with pytest.raises(GatewayError, match="belongs to instance 'hall-b', whose configuration"):
        holder(load_instances([cluster[0], cluster[2]]), "werk-b")


def test_export_with_instances_writes_the_owners_bundle_and_it_verifies(
    cluster: list[Path], tmp_path: Path
) -> None:
    write_tree(cluster[1], "werk-b", "hall-b")
    bundle = tmp_path / "werk-b.bundle"
    gateway = [sys.executable, "-m", "gateway"]
    exported = subprocess.run(
        [*gateway, "export", "--customer", "werk-b", "--out", str(bundle), "--instances", *cluster],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    key = load_config(cluster[1]).signing_key_path.with_suffix(".pub")
    verified = subprocess.run(
        [*gateway, "verify", str(bundle), "--key", str(key)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    refused = subprocess.run(
        [*gateway, "export", "--customer", "werk-b", "--instances", str(cluster[0])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "whose configuration is not among" in refused.stderr


def test_an_instance_holding_a_customer_it_no_longer_owns_refuses_to_start(
    cluster: list[Path],
) -> None:
    write_tree(cluster[2], "werk-b", "hall-c")  # hall-c wrote werk-b; the section now says hall-b
    with pytest.raises(ClusterViewError, match=r"\(werk-b -> hall-b\)"):
        check_ownership(load_config(cluster[2]))
    check_ownership(load_config(cluster[1]))  # the owner starts; an empty log is no conflict
    write_tree(cluster[1], "werk-b", "hall-b")
    check_ownership(load_config(cluster[1]))


async def test_the_gateway_checks_ownership_before_it_opens_its_log(cluster: list[Path]) -> None:
    write_tree(cluster[2], "werk-b", "hall-c")
    # Refused at once: without the check the gateway would run (and this would time out).
    with pytest.raises(ClusterViewError, match="holds the logs of customers"):
        async with asyncio.timeout(20):
            await Gateway(load_config(cluster[2])).run()


def hand_over(old: Path, new: Path, customer: str) -> None:
    """``customer``'s tree moved from instance ``old`` to ``new`` by the log's own steps
    (gateway/log/transfer.py), both logs on disk with their instances' real keys."""
    old_config, new_config = load_config(old), load_config(new)
    new_config.signing_key_path.parent.mkdir(parents=True, exist_ok=True)
    if not new_config.signing_key_path.exists():
        Signer.generate(new_config.signing_key_path)
    new_key = Signer.load(new_config.signing_key_path)
    source = Log(
        old_config.database_path, Signer.load(old_config.signing_key_path), old_config.instance
    )
    at = make_draft(10).at
    source.conn.execute("BEGIN IMMEDIATE")
    closed = close_tree(
        source.conn,
        source.writer,
        customer,
        new_origin=f"{new_config.instance}/{customer}",
        new_key=new_key.public,
        now=at,
    )
    source.conn.execute("COMMIT")
    source.close()
    target = Log(new_config.database_path, new_key, new_config.instance)
    target.conn.execute("BEGIN IMMEDIATE")
    adopt_tree(target.conn, read_tree(old_config.database_path, customer))
    target.writer.reload()
    target.writer.append([open_tree_record(closed, new_key, at)])
    target.writer.checkpoint(at)
    target.conn.execute("COMMIT")
    target.writer.committed()
    target.write([make_draft(i, customer) for i in range(20, 25)])
    target.close()


def test_after_a_handover_the_new_instance_owns_the_customer_and_exports_one_history(
    cluster: list[Path], tmp_path: Path
) -> None:
    write_tree(cluster[1], "werk-b", "hall-b")  # the section gives werk-b to hall-b
    kept = tmp_path / "kept.bundle"
    gateway = [sys.executable, "-m", "gateway"]

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*gateway, *map(str, args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (
        run("export", "--customer", "werk-b", "--out", kept, "--instances", *cluster).returncode
        == 0
    )
    hand_over(cluster[1], cluster[2], "werk-b")

    # each instance's log decides, whatever the unchanged section says
    old, new = load_config(cluster[1]), load_config(cluster[2])
    check_ownership(old)
    check_ownership(new)
    assert (old.owns("werk-b"), new.owns("werk-b")) == (False, True)
    # hall-b's section still lists werk-b, but its session drops werk-b's topics at connect
    held = cluster_subscriptions(old, list, dict)
    assert held is not None and "devices/werk-b/#" not in held._wanted()
    # a reload keeps what the log recorded (the file cannot undo a signed handover)
    running = Gateway(old)
    running._set_config(load_config(cluster[1]))  # what reload does with the re-read file
    assert not running.config.owns("werk-b")

    bundle = tmp_path / "werk-b.bundle"
    exported = run("export", "--customer", "werk-b", "--out", bundle, "--instances", *cluster)
    assert exported.returncode == 0, exported.stderr
    key = old.signing_key_path.with_suffix(".pub")
    verified = run("verify", bundle, "--key", key, "--since", kept)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("hall-c/werk-b: 11 entries")  # 4 + final + record + 5
    # without the instance that took it over, no partial history is exported
    refused = run("export", "--customer", "werk-b", "--instances", cluster[0], cluster[1])
    assert refused.returncode != 0 and "has not taken it over yet" in refused.stderr
    # the old instance alone: its tree stops at the move, so export and report are refused,
    # naming the instance that holds the whole history and the command to run there
    for command in (
        ("export", "--customer", "werk-b", "--config", cluster[1]),
        ("export", "--customer", "werk-b", "--db", old.database_path),
        ("report", "--customer", "werk-b", "--config", cluster[1]),
    ):
        refused = run(*command)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert refused.stderr.startswith(
            "einblick: customer 'werk-b' was handed over to instance 'hall-c'"
        ), refused.stderr
        assert f"einblick {command[0]} --customer werk-b --config <hall-c's" in refused.stderr
        assert "Traceback" not in refused.stderr
    # the customer the old instance still holds exports as before
    write_tree(cluster[0], "werk-a", "hall-a")
    assert run("export", "--customer", "werk-a", "--config", cluster[0]).returncode == 0
