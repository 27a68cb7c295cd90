"""The control operations of a handover (``einblick handover``), typed like every other op
(``gateway.operations.control_model``): the command asks the instance giving a customer away
(``handover_prepare``, ``handover_release``) and the instance taking it (``handover_hold``,
``handover_take``, ``handover_drop``). Bytes travel as hex; the handover record's fields are
those of ``gateway.log.transfer.ClosedTree``. A step that is refused raises ``HandoverError``,
whose message the command prints.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import GatewayError
from gateway.log.transfer import ClosedTree
from gateway.operations.control_model import Op
from gateway.operations.holds import Hold

__all__ = [
    "HANDOVER_DROP",
    "HANDOVER_HOLD",
    "HANDOVER_OPS",
    "HANDOVER_PREPARE",
    "HANDOVER_RELEASE",
    "HANDOVER_SCRUB",
    "HANDOVER_TAKE",
    "RELEASE_RETRY_S",
    "ClosedRecord",
    "DropReply",
    "HandoverError",
    "HandoverRequest",
    "HoldReply",
    "HoldRequest",
    "PrepareReply",
    "ReleaseReply",
    "ReleaseRequest",
    "ScrubReply",
    "ScrubRequest",
    "TakeReply",
    "TakeRequest",
]


# How long the old instance keeps asking the broker to drop the customer's subscriptions before
# it refuses the release. A broker busy with a cluster's failover or a large backlog can miss
# the 10 s in which one answer is expected; refusing then undoes a move that would have gone
# through a few seconds later, so it is asked again (``gateway.operations.release_retry.let_go``),
# but not for ever: the command waits for the release, and the customer's messages go to two
# sessions meanwhile.
RELEASE_RETRY_S = 60.0


class HandoverError(GatewayError):
    """A step of a handover is refused; the message says why and what to do."""


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HandoverRequest(_Request):
    """prepare, drop: the customer being moved."""

    customer: str = Field(min_length=1)


class PrepareReply(_Reply):
    """The source's MQTT filters for the customer (the hold subscribes to exactly these) and
    whether its log was already closed by an earlier run of the same move."""

    filters: list[str]
    closed: bool


class HoldRequest(_Request):
    """``filters``: the old instance's for the customer (empty when resuming a hold)."""

    customer: str = Field(min_length=1)
    filters: list[str]


class HoldReply(_Reply):
    """The hold session's client id, since when it holds (unix time of its SUBACK), its
    filters, and the public key (hex) the target signs with: the old instance hands the log to
    that key. The hold's own fields also go to the old instance with the release: refused, it
    takes back what the hold kept meanwhile (an older instance answers without filters)."""

    client_id: str
    since: float
    key: str
    filters: list[str] = Field(default_factory=list)


class ReleaseRequest(_Request):
    customer: str = Field(min_length=1)
    to_origin: str = Field(min_length=1)  # "<new instance>/<customer>"
    new_key: str = Field(min_length=64, max_length=64)  # hex Ed25519 public key
    wait_s: float = Field(default=60.0, gt=0)  # for the customer's queued releases to leave
    # the new instance's log database: where the old one later checks the move is complete
    # before it removes its copy of the customer's personal data (gateway/operations/moved.py)
    target_db: str | None = None
    # the new instance's hold session: a release refused after the old instance's UNSUBSCRIBE
    # may have taken effect drains it into the old instance's pipeline before it answers, so
    # the hold can end without losing what only it received (None: an older command; the new
    # instance then keeps the hold)
    hold: Hold | None = None
    # how long the command waits for the answer: past it, the old instance refuses instead of
    # closing the tree after the command gave up (it then asks handover_prepare where the
    # move stands). Relative, so the two boxes' clocks need not agree
    answer_within_s: float | None = Field(default=None, gt=0)


class ClosedRecord(_Reply):
    """The old instance's side of the handover record (``ClosedTree``), hex for bytes."""

    customer: str
    old_origin: str
    new_origin: str
    size: int
    root: str
    old_key: str
    new_key: str
    sig_old: str

    @classmethod
    def of(cls, closed: ClosedTree) -> ClosedRecord:
        return cls(
            customer=closed.customer,
            old_origin=closed.old_origin,
            new_origin=closed.new_origin,
            size=closed.size,
            root=closed.root.hex(),
            old_key=closed.old_key.hex(),
            new_key=closed.new_key.hex(),
            sig_old=closed.sig_old.hex(),
        )

    def tree(self) -> ClosedTree:
        """Back to the record's bytes (the inverse of ``of``)."""
        return ClosedTree(
            self.customer,
            self.old_origin,
            self.new_origin,
            self.size,
            bytes.fromhex(self.root),
            bytes.fromhex(self.old_key),
            bytes.fromhex(self.new_key),
            bytes.fromhex(self.sig_old),
        )


class ReleaseReply(_Reply):
    """``closed``: the record; ``overlap``: the customer's messages this instance took from
    the broker after ``handover_prepare`` (each may also be in the hold: a duplicate at most)."""

    closed: ClosedRecord
    overlap: int


class TakeRequest(_Request):
    closed: ClosedRecord
    source_db: str = Field(min_length=1)  # the old instance's database (read-only)
    # the old instance's control socket: an erasure on the new instance asks it to remove its
    # copy of the customer's personal data (gateway/operations/old_copies.py)
    source_socket: str | None = None


class TakeReply(_Reply):
    """``entries``: the tree's size after the record; ``drained``: messages the hold
    delivered; ``overlap``: the customer's messages the instance's own session took before the
    hold's subscriptions ended (each may also be in the hold: a duplicate at most)."""

    entries: int
    drained: int
    overlap: int


class DropReply(_Reply):
    dropped: bool


class ScrubRequest(_Request):
    """scrub, on the old instance after the take: ``to`` and ``target_db`` name the new
    instance and its database, where the handover record is checked."""

    customer: str = Field(min_length=1)
    to: str = Field(min_length=1)
    target_db: str = Field(min_length=1)


class ScrubReply(_Reply):
    """``removed``: personal rows removed now; ``waiting``: why the copy stays for now (None:
    nothing of the customer's personal data is left on the old instance)."""

    customer: str
    removed: int
    waiting: str | None


HANDOVER_PREPARE = Op("handover_prepare", HandoverRequest, PrepareReply)
HANDOVER_HOLD = Op("handover_hold", HoldRequest, HoldReply)
HANDOVER_RELEASE = Op("handover_release", ReleaseRequest, ReleaseReply)
HANDOVER_TAKE = Op("handover_take", TakeRequest, TakeReply)
HANDOVER_DROP = Op("handover_drop", HandoverRequest, DropReply)
HANDOVER_SCRUB = Op("handover_scrub", ScrubRequest, ScrubReply)

HANDOVER_OPS: tuple[Op[BaseModel, BaseModel], ...] = (
    HANDOVER_PREPARE,
    HANDOVER_HOLD,
    HANDOVER_RELEASE,
    HANDOVER_TAKE,
    HANDOVER_DROP,
    HANDOVER_SCRUB,
)
