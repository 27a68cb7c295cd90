"""A right asked of the instance that handed the customer over: refused, saying where to go.

After ``einblick handover`` the customer's log, consents, objections, restrictions and
erasures live on the new instance (gateway/operations/handover.py); the old one's tree is closed
and writes nothing more. A consent action or an erasure asked of the old instance would be
refused deep inside ("no policy for customer …", "the log … was handed over") without saying
what to do, or, worse, an erasure would seem to succeed on a copy while the new instance keeps
sending. So each is refused first, naming the instance that holds the customer now and the
command to run there.
"""

from __future__ import annotations

from gateway.config import Config
from gateway.log.moves import read_moves

__all__ = ["moved_away"]


def moved_away(config: Config, customer: str, command: str, *, running: bool = True) -> str | None:
    """The refusal when ``customer`` was handed over from this instance, else None.
    ``command`` is what to run on the new instance, without ``--config``. ``running``: the
    configuration carries the moves the gateway read at start (``Config.moves``); a command
    working on a stopped gateway's database reads them from the log."""
    if running and customer not in config.moves[0]:
        return None
    to = read_moves(config.database_path, config.instance).handed_out.get(customer)
    if to is None:
        return None
    return (
        f"customer {customer!r} was handed over to instance {to!r}: its log, consents and "
        f"erasures are kept there now, and this instance ({config.instance!r}) records nothing "
        f"more for it. Run it on {to!r}: {command} --config <{to}'s einblick.yaml>"
    )
