"""``--instances`` (gateway/commands/instances.py): the option takes every instance's
configuration, and a command that presents one customer's history is pointed at the instance
that holds it; without the option nothing changes, and ``--db`` beside it is refused."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gateway.commands.instances import add_instances_option, use_owner
from tests.gateway.test_cluster_view import cluster_block, instance, write_tree

INSTANCES = ("hall-a", "hall-b", "hall-c")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="einblick export")
    parser.add_argument("--config", type=Path, default=Path("einblick.yaml"))
    parser.add_argument("--customer", required=True)
    parser.add_argument("--db", type=Path, default=None)
    add_instances_option(parser)
    return parser


def test_the_command_reads_the_instance_that_holds_the_customer(tmp_path: Path) -> None:
    block = cluster_block({"hall-a": "werk-a", "hall-b": "werk-b"})
    paths = [instance(tmp_path, name, block) for name in INSTANCES]
    write_tree(paths[1], "werk-b", "hall-b")
    args = _parser().parse_args(["--customer", "werk-b", "--instances", *map(str, paths)])
    assert args.instances == paths
    use_owner(args, "export")
    assert args.config == paths[1]


def test_without_instances_the_configuration_stays(tmp_path: Path) -> None:
    args = _parser().parse_args(["--customer", "werk-b", "--config", str(tmp_path / "a.yaml")])
    use_owner(args, "export")
    assert args.config == tmp_path / "a.yaml"


def test_a_database_beside_instances_is_refused(tmp_path: Path) -> None:
    args = _parser().parse_args(
        ["--customer", "werk-b", "--db", "x.db", "--instances", str(tmp_path / "a.yaml")]
    )
    with pytest.raises(SystemExit, match="--db and --instances exclude each other"):
        use_owner(args, "export")
