"""Several gateway instances behind one (clustered) broker: who owns which customer.

    cluster:                          # the same block in every instance's configuration
      instances:
        - name: hall-a
          customers: [bakery]         # explicit: bakery is hall-a's, whatever the hash says
        - name: hall-b
        - name: hall-c

Each customer has exactly one owning instance: the one that lists it, or else the one that wins
rendezvous hashing (highest random weight, Thaler & Ravishankar 1998) over the named instances.
The owner alone loads the customer's policy, subscribes to its topics and writes its Merkle tree,
so every customer's log keeps exactly one writer. Rendezvous hashing needs no shared state: every
instance that reads the same block computes the same owner, and adding or removing an instance
moves only the customers that instance wins or held (about 1/n of them), never the others.

Why ownership and not MQTT 5 shared subscriptions (``$share/group/…``): a shared subscription
splits one customer's messages over several writers, so a customer's history would be several
trees; and Mosquitto round-robins to an offline member and never redispatches (mosquitto#2662,
#1747), so a killed instance's share waits in its session or is lost with a clean one.

This module is pure (no I/O) and sits beside the configuration, below every room: the
configuration validates it, the message path asks it which topics to subscribe to.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ClusterConfig", "ClusterMember", "rendezvous_owner"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Versioned, so that a future change of the hash is a visible change of the assignment.
_DOMAIN = b"einblick-rendezvous-v1\x00"


def _weight(instance: str, customer: str) -> bytes:
    return hashlib.sha256(_DOMAIN + instance.encode() + b"\x00" + customer.encode()).digest()


def rendezvous_owner(customer: str, instances: list[str]) -> str:
    """The instance with the highest weight for ``customer``; ties (never seen with SHA-256)
    go to the lower name, so the answer is the same everywhere."""
    if not instances:
        raise ValueError("rendezvous hashing over no instances has no owner")
    return _rendezvous(customer, tuple(sorted(instances)))


# Asked for every message in a customer's namespace in a cluster (subscriptions.elsewhere):
# remembered, bounded, as the names come from device topics.
@functools.lru_cache(maxsize=4096)
def _rendezvous(customer: str, instances: tuple[str, ...]) -> str:
    return max(instances, key=lambda name: _weight(name, customer))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterMember(_Model):
    name: str
    # Customers this instance owns whatever the hash says (an explicit override).
    customers: Annotated[list[str], Field(default_factory=list)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value


class ClusterConfig(_Model):
    instances: Annotated[list[ClusterMember], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_owner(self) -> ClusterConfig:
        names = [m.name for m in self.instances]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"instance {name!r} is listed twice")
        claimed: dict[str, str] = {}
        for member in self.instances:
            for customer in member.customers:
                other = claimed.get(customer)
                if other is not None and other != member.name:
                    raise ValueError(
                        f"customer {customer!r} is claimed by instance {other!r} and by "
                        f"{member.name!r}: a customer's log has exactly one writer; list it under "
                        "one instance only"
                    )
                claimed[customer] = member.name
        return self

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.instances]

    def owner(self, customer: str) -> str:
        """The one instance that owns ``customer``."""
        for member in self.instances:
            if customer in member.customers:
                return member.name
        return rendezvous_owner(customer, self.names)

    def owned_by(self, instance: str, customers: list[str]) -> list[str]:
        """Which of ``customers`` ``instance`` owns, in the given order."""
        return [c for c in customers if self.owner(c) == instance]

    def fingerprint(self) -> str:
        """A short digest of the assignment rules: every instance must show the same one, or
        two of them may compute different owners (status shows it; an installer compares)."""
        canonical = self.model_dump_json().encode()
        return hashlib.sha256(canonical).hexdigest()[:12]
