"""The holds on grants: which grants release nothing now because a customer withdrew consent,
objected (GDPR Art. 21) or asked for restriction (Art. 18), since when — and which holds ended.

The engine asks one question per grant and message (``reason``: held back, and why?) and keeps
the rest for the send-time checks: a row queued before a hold began must not leave after it
(``policies.engine``'s ``still_allowed``), and a release decided before a hold ended was decided
without that grant (``released_since``, ``ended_holds``; ``policies.onset`` uses them in both
directions). Which customer and grant exist is the engine's to check; here a hold is only a key
(customer, grant id) with its times. Pure: the caller hands in every time stamp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from policies.decision import Reason

__all__ = ["HOLDS_KEPT", "WITHDRAWN", "EndedHold", "GrantHolds"]

HOLDS_KEPT = 64  # ended holds remembered per grant (each is a customer's signed action)

WITHDRAWN = Reason("withdrawn")

# (began, ended, what it was); began is None when only the end was handed in.
EndedHold = tuple[datetime | None, datetime, Reason]


class GrantHolds:
    """The grants held back now and the holds that ended, per (customer, grant id)."""

    def __init__(self) -> None:
        self._since: dict[tuple[str, str], datetime] = {}
        # Why a held grant releases nothing when it is not a consent withdrawn: an objection or
        # a restriction, each explained in its own words. Absent means consent withdrawn.
        self._because: dict[tuple[str, str], Reason] = {}
        # The holds that ended (consent given again, an objection or restriction lifted), oldest
        # first. A release decided before one ended was decided without that grant, one decided
        # inside none of them with it. At most ``HOLDS_KEPT``, the latest: the list must not
        # grow with every withdraw/give a customer sends.
        self._ended: dict[tuple[str, str], list[EndedHold]] = {}

    def reason(self, customer: str, grant: str) -> Reason | None:
        """Why ``grant`` is held back now, or None when it is not."""
        key = (customer, grant)
        if key not in self._since:
            return None
        return self._because.get(key, WITHDRAWN)

    def hold(self, customer: str, grant: str, at: datetime, because: Reason | None) -> None:
        """``grant`` is held back from ``at``; ``because`` names an objection or a restriction
        (None: consent withdrawn). A later hold replaces the earlier one's time and reason."""
        key = (customer, grant)
        self._since[key] = at
        if because is None:
            self._because.pop(key, None)
        else:
            self._because[key] = because

    def end(self, customer: str, grant: str, at: datetime, because: Reason | None) -> None:
        """The hold on ``grant`` ended at ``at`` (consent given again, objection or restriction
        lifted). An end older than the hold now in place is ignored: that hold came after it.
        With no hold in place, ``because`` (the hold that ended, as a restarted gateway hands it
        back) is still remembered, so ``released_since`` survives a restart; without it, a
        consent given that was never withdrawn leaves no trace."""
        key = (customer, grant)
        began = self._since.get(key)
        if began is not None and at < began:
            return
        if began is not None:
            because = because or self._because.get(key, WITHDRAWN)
            del self._since[key]
            self._because.pop(key, None)
        if because is not None:
            ended = self._ended.setdefault(key, [])
            ended.append((began, at, because))
            del ended[:-HOLDS_KEPT]

    def held(self, customer: str, grant: str) -> tuple[datetime, Reason] | None:
        """Since when and why ``grant`` is held back now, or None."""
        since = self._since.get((customer, grant))
        if since is None:
            return None
        return since, self._because.get((customer, grant), WITHDRAWN)

    def released_since(self, customer: str, grant: str, since: datetime) -> Reason | None:
        """The hold on ``grant`` that ended after ``since``, or None: as far as is known here,
        it was not held back at ``since``. (While the system clock is behind the log, the gateway's
        clock hands out each time a microsecond after the last, so the order of a decision and
        a consent given after it is kept: gateway/messages/clock.py.)"""
        ended = self._ended.get((customer, grant))
        last = ended[-1] if ended else None
        return last[2] if last is not None and last[1] > since else None

    def ended(self, customer: str, grant: str) -> Sequence[EndedHold]:
        """The holds on ``grant`` that ended, oldest first: (began, ended, what it was); began is
        None when only the end was learnt. At most ``HOLDS_KEPT``, the latest."""
        return tuple(self._ended.get((customer, grant), ()))

    def since(self) -> Mapping[tuple[str, str], datetime]:
        """(customer, grant) -> when its hold began, for every grant held back now (a copy)."""
        return dict(self._since)
