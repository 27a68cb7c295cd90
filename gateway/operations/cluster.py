"""One view over several instances: which instance's log holds a customer's history.

``einblick export|report --instances a.yaml b.yaml c.yaml`` and ``einblick status --instances …``
take every instance's configuration. The instances must agree on the assignment (the same
``cluster:`` block, compared by its fingerprint), and a customer's tree must be in exactly one
instance's database, the one that owns the customer: a tree in two databases means two writers
(or a move without a recorded handover), and a tree outside its owner means the assignment
changed under a running log. Both are refused with what to do, never resolved by a guess, since
an export or report from the wrong log would tell the customer a history that is not theirs.
A handover (``einblick handover``) is the one recorded way a customer moves: the signed entries
in both logs (``gateway.log.moves``) override the section for the two instances involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gateway.config import Config, load_config
from gateway.errors import GatewayError, LogError
from gateway.log.moves import Moves, read_moves
from gateway.log.reader import Reader

__all__ = ["ClusterViewError", "check_ownership", "holder", "load_instances", "moves", "trees"]

BOX_LOG = "_gateway"  # every instance's own events (gateway/log/SPEC.md §1): never a customer


class ClusterViewError(GatewayError):
    """The instances given do not add up to one history per customer."""


def load_instances(paths: Sequence[Path]) -> list[Config]:
    """Every instance's configuration, checked to describe one cluster."""
    configs = [load_config(path) for path in paths]
    first = configs[0]
    if first.cluster is None:
        raise ClusterViewError(f"{first.source}: no cluster: section; --instances is for a cluster")
    names: dict[str, Path] = {}
    for config in configs:
        if config.cluster is None or config.cluster.fingerprint() != first.cluster.fingerprint():
            raise ClusterViewError(
                f"{config.source}: its cluster: section differs from {first.source}'s; instances "
                "with different sections may assign a customer to two owners. Give every "
                "instance the same cluster: block"
            )
        if config.instance in names:
            raise ClusterViewError(
                f"{config.source} and {names[config.instance]} both run instance "
                f"{config.instance!r}"
            )
        names[config.instance] = config.source
    return configs


def trees(config: Config) -> set[str]:
    """The customers whose trees this instance's database holds (none without a database)."""
    if not config.database_path.is_file():
        return set()
    try:
        reader = Reader.open(config.database_path)
    except LogError as exc:
        raise ClusterViewError(f"instance {config.instance!r}: {exc}") from exc
    try:
        return set(reader.chain_names().values())
    finally:
        reader.close()


def moves(config: Config) -> Moves:
    """The handovers this instance's log records (none without a database)."""
    try:
        return read_moves(config.database_path, config.instance)
    except LogError as exc:
        raise ClusterViewError(f"instance {config.instance!r}: {exc}") from exc


def holder(configs: Sequence[Config], customer: str) -> Config:
    """The instance whose log is ``customer``'s one history: a log closed by a handover is
    history continued elsewhere (the instance that took it over holds all of it)."""
    cluster = configs[0].cluster
    assert cluster is not None, "load_instances checks every configuration has a cluster"
    owner = cluster.owner(customer)
    holding = [c for c in configs if customer in trees(c)]
    closed = [c for c in holding if customer in moves(c).handed_out]
    holding = [c for c in holding if c not in closed]
    taken = [c for c in holding if customer in moves(c).taken_over]
    if closed and not taken:
        went = moves(closed[0]).handed_out[customer]
        raise ClusterViewError(
            f"customer {customer!r}'s log was handed over by instance {closed[0].instance!r} to "
            f"{went!r}, which has not taken it over yet: run the same `einblick handover` "
            f"again to finish it (or give {went!r}'s configuration in --instances)"
        )
    if taken:
        owner = taken[0].instance
    if len(holding) > 1:
        which = ", ".join(c.instance for c in holding)
        raise ClusterViewError(
            f"customer {customer!r} has trees in several instances' logs ({which}): their "
            "histories are not one; export each with --config and keep them together"
        )
    if holding and holding[0].instance != owner:
        raise ClusterViewError(
            f"customer {customer!r}'s log is in instance {holding[0].instance!r}, but the "
            f"cluster: section assigns the customer to {owner!r}: the assignment changed "
            "without a handover. Restore the section, or move the customer explicitly"
        )
    for config in configs:
        if config.instance == owner:
            return config
    raise ClusterViewError(
        f"customer {customer!r} belongs to instance {owner!r}, whose configuration is not among "
        f"--instances ({', '.join(c.instance for c in configs)})"
    )


def check_ownership(config: Config) -> None:
    """At start: refuse to run when this instance's log holds a customer the cluster: section
    now gives to another instance. Running would leave that customer's history split in two
    (the old tree here, a new one at the owner) with nothing recording the move."""
    if config.cluster is None:
        return
    moved = moves(config)
    # a log this instance handed over is closed history here; one it took over is its own
    config.record_moves(frozenset(moved.handed_out), moved.taken_over)
    foreign = sorted(
        c for c in trees(config) - {BOX_LOG} - set(moved.handed_out) if not config.owns(c)
    )
    if foreign:
        owners = ", ".join(f"{c} -> {config.cluster.owner(c)}" for c in foreign)
        raise ClusterViewError(
            f"instance {config.instance!r} holds the logs of customers the cluster: section "
            f"gives to other instances ({owners}). A customer's history has one writer and "
            "moves only with its log; list these customers under this instance again "
            f"(customers: in cluster.instances) and restart"
        )
