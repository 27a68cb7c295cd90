"""``gateway.rights.moved_away``: a right asked of the instance that handed the customer over
is refused, naming the instance that holds the customer now and the command to run there (real
logs and keys on disk; the erasure of a stopped gateway's database, ``forget_offline``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.log.reader import Reader
from gateway.rights.erasure import ErasureError
from gateway.rights.forgetting import forget_offline
from gateway.rights.moved_away import moved_away
from tests.gateway.test_cluster_view import (
    INSTANCES,
    cluster_block,
    hand_over,
    instance,
    write_tree,
)

COMMAND = "einblick forget --customer werk-a --by '…'"


@pytest.fixture
def cluster(tmp_path: Path) -> list[Path]:
    block = cluster_block({"hall-a": "werk-a", "hall-b": "werk-b"})
    return [instance(tmp_path, n, block) for n in INSTANCES]


def test_a_moved_customer_is_sent_to_the_instance_holding_it(cluster: list[Path]) -> None:
    write_tree(cluster[0], "werk-a", "hall-a")
    hand_over(cluster[0], cluster[2], "werk-a")
    config = load_config(cluster[0])
    # a running gateway knows its moves from the start: none recorded here, no refusal
    assert moved_away(config, "werk-a", COMMAND) is None
    config.record_moves(frozenset({"werk-a"}), frozenset())
    said = moved_away(config, "werk-a", COMMAND)
    assert said is not None
    assert "handed over to instance 'hall-c'" in said
    assert f"Run it on 'hall-c': {COMMAND} --config <hall-c's einblick.yaml>" in said
    assert moved_away(config, "werk-b", COMMAND) is None
    # the new instance took the customer over: nothing refused there
    assert moved_away(load_config(cluster[2]), "werk-a", COMMAND, running=False) is None


def test_an_erasure_on_the_old_database_is_refused_and_writes_nothing(
    cluster: list[Path],
) -> None:
    """Without the refusal, the erasure would append an entry after the tree's final entry."""
    write_tree(cluster[0], "werk-a", "hall-a")
    hand_over(cluster[0], cluster[2], "werk-a")
    config = load_config(cluster[0])
    db = config.database_path

    def size() -> int:  # the newest entry's place in the database
        reader = Reader.open(db)
        try:
            return reader.latest_seq()
        finally:
            reader.close()

    before = size()
    with pytest.raises(ErasureError, match=r"handed over to instance 'hall-c'.*einblick forget"):
        forget_offline(config, "werk-a", None, "Anna Weber", known_recipients=[])
    assert size() == before
