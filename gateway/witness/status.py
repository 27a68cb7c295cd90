"""What the gateway says about each witness: how far cosigning is behind, and refusals.

Typed once here, read by ``einblick status``, the metrics and the TUI (through
``gateway.operations.status_model.Status.witnesses``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["WitnessLog", "WitnessRefusal", "WitnessStatus"]


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class WitnessRefusal(_Reply):
    """A witness refused a checkpoint of this log: a fork, a rewritten or cut-back history, or
    a witness that does not (yet) follow the log. Shown until a later checkpoint is cosigned."""

    log: str  # the customer (or the gateway's own log)
    status: int  # the witness's HTTP status; 0: refused here before sending (size went back)
    reason: str
    at: float  # POSIX seconds


class WitnessLog(_Reply):
    """One log as one witness has followed it."""

    log: str  # the customer (or the gateway's own log)
    cosigned: bool  # its newest checkpoint carries this witness's cosignature
    entries_behind: int = 0
    seconds_behind: float | None = None


class WitnessStatus(_Reply):
    name: str
    key: str  # the witness's key name, as in its cosignature lines
    url: str
    reachable: bool | None = None  # did it answer the last request; None: none sent yet
    logs: int = 0  # logs with a signed checkpoint
    logs_cosigned: int = 0  # of those, whose newest checkpoint it has cosigned
    last_error: str | None = None
    entries_behind: int = 0  # signed entries not yet covered by its cosignature, all logs
    seconds_behind: float | None = None  # age of the oldest checkpoint it has not covered
    cosigned: int = 0  # cosignatures stored since the gateway started
    refusals: list[WitnessRefusal] = []
    per_log: list[WitnessLog] = []

    def for_log(self, log: str) -> WitnessStatus:
        """This witness as one customer may see it: their log only, nothing of the others
        (not their names, not how much they log)."""
        mine = [entry for entry in self.per_log if entry.log == log]
        seconds = [e.seconds_behind for e in mine if e.seconds_behind is not None]
        return self.model_copy(
            update={
                "logs": len(mine),
                "logs_cosigned": sum(e.cosigned for e in mine),
                "entries_behind": sum(e.entries_behind for e in mine),
                "seconds_behind": max(seconds) if seconds else None,
                "refusals": [r for r in self.refusals if r.log == log],
                "per_log": mine,
                # A connection error names no customer; a log's own problem may name another.
                "last_error": self.last_error if self.reachable is False else None,
                "cosigned": 0,  # counted over every log
            }
        )
