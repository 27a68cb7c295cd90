"""The gateway's witness submitter: every new checkpoint of every log, to every witness.

One task per configured witness, off the message path: the checkpoint task only calls
:meth:`Submitter.poke`, which sets a flag. The flag is the bounded queue — however many
checkpoints are signed while a round runs or a witness is down, one round follows, and it sends
each log's *newest* checkpoint with a consistency proof from the size the witness last
cosigned. So a witness that was down for a day catches up with one request per log, and a
witness that never answers costs one task sleeping between retries (gateway/backoff.py),
never a message's forwarding. Within a round, up to ``IN_FLIGHT`` logs are offered at the same
time: a round costs about one network round trip per ``IN_FLIGHT`` logs rather than per log,
as long as the witness itself keeps up (it commits one request at a time).

Per log and witness (``gateway.log.cosignatures``):

- old size unknown (first contact, or a replaced witness key): send ``old 0``; a witness that
  cosigned before answers 409 with its size, which is stored, and the request is sent again
  with a proof from that size;
- 200: each returned line that verifies against the configured witness key (type 0x04) is
  stored verbatim with the checkpoint; lines by other keys are ignored, as the spec says;
- 400/403/404/422: the refusal is stored and shown in status (a 422 is a witness refusing a
  history that does not extend what it cosigned: a rewritten log); a fork's checkpoint is not
  sent again, the next one is; other refusals are retried after ``retry_max_s``;
- the witness's size above the log's own: the log was cut back or replaced (or the witness
  is wrong); refused here, without a request, and shown the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gateway.backoff import Backoff
from gateway.config import WitnessConfig
from gateway.errors import GatewayError
from gateway.log.checkpoints import SignedCheckpoint
from gateway.log.cosignatures import Progress
from gateway.log.note import NoteError, Verifier, open_note
from gateway.witness.client import Conflict, Cosigned, Refused, WitnessClient, WitnessUnreachable
from gateway.witness.ledger import Ledger, Runner
from gateway.witness.status import WitnessLog, WitnessRefusal, WitnessStatus

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Submitter", "Witnesses"]

log = logging.getLogger(__name__)

MAX_LINES = 64  # cosignature lines read from one answer
IN_FLIGHT = 8  # logs whose requests one witness is sent at the same time
_US = 1_000_000


class Submitter:
    def __init__(
        self,
        config: WitnessConfig,
        ledger: Ledger,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.verifier = Verifier.parse(config.vkey)
        self._key = self.verifier.vkey  # progress is per key: a new key starts over
        self.ledger = ledger
        self._clock = clock
        self._backoff = backoff or Backoff(1.0, config.retry_max_s)
        self._wake = asyncio.Event()
        self._wake.set()  # a first round at start: catch up on what was signed while stopped
        self.reachable: bool | None = None
        self.last_error: str | None = None
        self.cosigned = 0
        # Per log (chain id): its name, entries not covered, since when (µs), from _measure.
        self._logs: dict[int, tuple[str, int, int | None]] = {}
        self._refusals: list[WitnessRefusal] = []
        self.rounds = 0  # rounds finished (with or without success)
        self._begun = 0  # rounds begun: a round reads the checkpoints when it begins
        self._finished = asyncio.Condition()

    def poke(self) -> None:
        """New checkpoints are signed: a round soon (never blocks, never queues more)."""
        self._wake.set()

    async def run(self) -> None:
        # Here, not at the top: a gateway with no witness configured never loads the HTTP client.
        import aiohttp  # noqa: PLC0415

        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client: WitnessClient | None = None
            while True:
                # Also a round now and then with no new checkpoint: a quiet log whose last
                # checkpoint was refused for a reason that may pass (404: the witness was not
                # yet told about it) is offered again.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.retry_max_s):
                        await self._wake.wait()
                self._wake.clear()
                self._begun += 1
                try:
                    if client is None:  # here, so a CA file that will not load is retried
                        client = self._client(session)
                    await self._round(client)
                except (WitnessUnreachable, GatewayError) as exc:
                    self.reachable = (
                        False if isinstance(exc, WitnessUnreachable) else self.reachable
                    )
                    await self._failed(str(exc))
                except Exception as exc:
                    # A witness is an extra, never a dependency: whatever goes wrong in this
                    # task (a bug included) is logged and retried, and never ends the gateway's
                    # task group, which would stop forwarding for every customer.
                    log.exception("witness %s: unexpected failure", self.config.name)
                    await self._failed(f"unexpected failure: {type(exc).__name__}: {exc}")
                else:
                    self._backoff.reset()
                async with self._finished:
                    self.rounds += 1
                    self._finished.notify_all()

    def _client(self, session: aiohttp.ClientSession) -> WitnessClient:
        try:
            return WitnessClient(session, self.config.url, ca_file=self.config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WitnessUnreachable(
                f"{self.config.url}: cannot load the CA file {self.config.ca_file}: {exc}"
            ) from exc

    async def _failed(self, error: str) -> None:
        self.last_error = error
        delay = self._backoff.next_delay()
        log.warning(
            "witness %s: %s (cosigning is behind; next try in %.0f s)",
            self.config.name,
            error,
            delay,
        )
        # Checkpoints signed meanwhile do not shorten the wait; the retry covers them.
        await asyncio.sleep(delay)
        self._wake.set()

    async def settle(self) -> None:
        """Wait until a round that began after this call has finished: every checkpoint signed
        before the call has then been offered to this witness (cosigned, refused, or failed)."""
        wanted = self._begun + 1
        self._wake.set()
        async with self._finished:
            await self._finished.wait_for(lambda: self.rounds >= wanted)

    async def _round(self, client: WitnessClient) -> None:
        checkpoints = await self.ledger.checkpoints()
        progress = await self.ledger.progress(self._key)
        await self._measure(checkpoints, progress)  # status is right while the witness is down
        problems: list[str] = []
        # Up to IN_FLIGHT logs' requests at a time: a round costs about one answer's time per
        # IN_FLIGHT logs rather than per log, so a witness across the internet still cosigns
        # hundreds of logs each second. Each log's own requests stay one after another.
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def offer(checkpoint: SignedCheckpoint, held: Progress | None) -> None:
            async with gate:
                try:
                    await self._submit(client, checkpoint, held)
                except WitnessUnreachable:
                    raise  # the witness is down: the whole round waits for it
                except GatewayError as exc:
                    # This log's proof or record failed (a damaged or compacted tree, a write
                    # the database refused): said in status, the other logs still go out.
                    problems.append(f"{checkpoint.chain}: {exc}")

        try:
            async with asyncio.TaskGroup() as group:
                for checkpoint in checkpoints:
                    held = progress.get(checkpoint.chain_id)
                    if held is not None and held.checkpoint_id == checkpoint.id:
                        continue  # cosigned already
                    if self._refused_already(checkpoint, held):
                        continue
                    group.create_task(offer(checkpoint, held))
        except* WitnessUnreachable as down:
            # The first failure cancelled the others' requests; one reason is enough to show.
            raise down.exceptions[0] from None
        self.last_error = "; ".join(sorted(problems)) or None
        await self._measure(checkpoints, await self.ledger.progress(self._key))

    def _refused_already(self, checkpoint: SignedCheckpoint, held: Progress | None) -> bool:
        """This checkpoint was refused: a fork (422) or a log cut back (0) is not sent again,
        only the next checkpoint is; other refusals (the witness's configuration) are retried
        after ``retry_max_s``."""
        if held is None or held.refused_at_us is None or held.refused_at_us < checkpoint.at_us:
            return False
        if held.refused_status in (0, 422):
            return True
        return self._us() - held.refused_at_us < self.config.retry_max_s * _US

    async def _submit(
        self, client: WitnessClient, checkpoint: SignedCheckpoint, held: Progress | None
    ) -> None:
        old = held.size if held is not None and held.size is not None else 0
        for _ in range(3):  # a 409 teaches the size; a second 409 means it moved meanwhile
            if old > checkpoint.size:
                await self._refused(
                    checkpoint,
                    0,
                    f"the witness says it cosigned {old} entries of this log, more than the "
                    f"{checkpoint.size} its newest checkpoint holds: either the log was cut back "
                    "or replaced on this box (restore the database holding those entries), or "
                    "the witness is wrong. A checkpoint a customer kept settles it: einblick "
                    "verify --since",
                )
                return
            proof = (
                []
                if old in (0, checkpoint.size)
                else await self.ledger.proof(checkpoint.chain_id, old, checkpoint.size)
            )
            reply = await client.add_checkpoint(old, proof, checkpoint.note)
            self.reachable = True  # it answered (whatever it said)
            if isinstance(reply, Conflict):
                await self.ledger.learned(self._key, checkpoint.chain_id, reply.size, self._us())
                old = reply.size
                continue
            if isinstance(reply, Refused):
                await self._refused(checkpoint, reply.status, reply.reason)
                return
            await self._store(checkpoint, reply)
            return
        # The error ends the round and is shown to every customer while the witness counts as
        # unreachable (WitnessStatus.for_log): the log's name goes to the operator's log only.
        log.warning(
            "witness %s: its cosigned size of %s changed three times in one round",
            self.config.name,
            checkpoint.chain,
        )
        raise WitnessUnreachable(
            f"{self.config.url}: the size it says it cosigned changed three times in one round "
            "(two boxes submitting one log, or a witness restored from an old copy?)"
        )

    async def _store(self, checkpoint: SignedCheckpoint, reply: Cosigned) -> None:
        lines = reply.lines.splitlines(keepends=True)
        if len(lines) > MAX_LINES:
            raise WitnessUnreachable(
                f"{self.config.url}: {len(lines)} signature lines in one answer"
            )
        for line in lines:
            if not line.endswith("\n"):
                continue
            try:
                opened = open_note(checkpoint.text + "\n" + line, [self.verifier])
            except NoteError:
                continue  # another key's line, or not a signature line: ignored
            stamp = opened.timestamps[0]
            assert stamp is not None  # a type 0x04 key's signature always carries one
            await self.ledger.cosigned(
                witness=self._key,
                name=self.verifier.name,
                checkpoint=checkpoint,
                line=line,
                timestamp=stamp,
                at_us=self._us(),
            )
            self.cosigned += 1
            log.info(
                "witness %s cosigned %s at size %d",
                self.config.name,
                checkpoint.chain,
                checkpoint.size,
            )
            return
        raise WitnessUnreachable(
            f"{self.config.url}: answered 200 without a valid cosignature by "
            f"{self.verifier.name} (key {self.verifier.id.hex()}): is the configured vkey "
            "the one 'einblick witness init' printed for it?"
        )

    async def _refused(self, checkpoint: SignedCheckpoint, status: int, reason: str) -> None:
        log.error(
            "witness %s refused %s at size %d (%s): %s",
            self.config.name,
            checkpoint.chain,
            checkpoint.size,
            status or "not sent",
            reason,
        )
        await self.ledger.refused(self._key, checkpoint.chain_id, status, reason, self._us())

    async def _measure(
        self, checkpoints: list[SignedCheckpoint], progress: dict[int, Progress]
    ) -> None:
        logs: dict[int, tuple[str, int, int | None]] = {}
        refusals: list[WitnessRefusal] = []
        for checkpoint in checkpoints:
            held = progress.get(checkpoint.chain_id)
            if held is not None and held.refused_status is not None:
                refusals.append(
                    WitnessRefusal(
                        log=checkpoint.chain,
                        status=held.refused_status,
                        reason=held.refused_reason or "",
                        at=(held.refused_at_us or 0) / _US,
                    )
                )
            if held is not None and held.checkpoint_id == checkpoint.id:
                logs[checkpoint.chain_id] = (checkpoint.chain, 0, None)
                continue
            size = held.size if held is not None and held.size is not None else 0
            if size > checkpoint.size:
                size = 0  # the witness holds more than the log: all of the log is uncovered
            since = await self.ledger.first_uncovered_at(checkpoint.chain_id, size)
            # -1: not cosigned, though no entry is behind (its size was learned from a 409).
            logs[checkpoint.chain_id] = (checkpoint.chain, checkpoint.size - size or -1, since)
        self._logs = logs
        self._refusals = refusals

    def _us(self) -> int:
        return int(self._clock() * _US)

    def status(self) -> WitnessStatus:
        now = self._clock()
        per_log = [
            WitnessLog(
                log=name,
                cosigned=behind == 0,
                entries_behind=max(behind, 0),
                seconds_behind=None if since is None else max(0.0, now - since / _US),
            )
            for name, behind, since in self._logs.values()
        ]
        seconds = [e.seconds_behind for e in per_log if e.seconds_behind is not None]
        return WitnessStatus(
            name=self.config.name,
            key=self.verifier.name,
            url=self.config.url,
            reachable=self.reachable,
            logs=len(per_log),
            logs_cosigned=sum(e.cosigned for e in per_log),
            last_error=self.last_error,
            entries_behind=sum(e.entries_behind for e in per_log),
            seconds_behind=max(seconds) if seconds else None,
            cosigned=self.cosigned,
            refusals=self._refusals,
            per_log=per_log,
        )


class Witnesses:
    """Every configured witness's submitter: what ``app.py`` holds, starts, pokes and asks."""

    def __init__(self, configs: Sequence[WitnessConfig], *, read: Runner, write: Runner) -> None:
        ledger = Ledger(read, write)
        self.submitters = [Submitter(config, ledger) for config in configs]

    def start(self, tasks: asyncio.TaskGroup) -> None:
        for submitter in self.submitters:
            tasks.create_task(submitter.run(), name=f"witness-{submitter.config.name}")

    def poke(self) -> None:
        for submitter in self.submitters:
            submitter.poke()

    async def settle(self) -> None:
        """Offer what is signed to every witness and wait for their answers, each at most its
        ``timeout_s`` (an export then carries the cosignatures of its own checkpoint); a
        witness that does not answer in time is left behind, not waited for."""
        for submitter in self.submitters:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(submitter.config.timeout_s):
                    await submitter.settle()

    def status(self) -> list[WitnessStatus]:
        return [submitter.status() for submitter in self.submitters]
