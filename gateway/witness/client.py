"""The gateway's side of add-checkpoint: one HTTP request, its answer read and bounded.

Errors that mean "try again later" (connection refused, timeout, a 5xx, an answer too large to
be one) raise :class:`WitnessUnreachable`; the protocol's own answers come back as values, so
the submitter decides on each (store, learn the size, record a refusal).

aiohttp is imported only where a request is made: a gateway without witnesses (most boxes) does
not load the HTTP client at all (~19 MB of memory and ~90 ms of start-up on this machine, more on
a Pi-class box).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from gateway.errors import GatewayError
from gateway.witness.protocol import ProtocolError, parse_size, request_body

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "MAX_ANSWER",
    "Conflict",
    "Cosigned",
    "Refused",
    "Reply",
    "WitnessClient",
    "WitnessUnreachable",
]

MAX_ANSWER = 64 * 1024  # cosignature lines for a few dozen keys; anything larger is not one


class WitnessUnreachable(GatewayError):
    """The witness could not be asked, or did not answer as a witness: retry with backoff."""


@dataclass(frozen=True, slots=True)
class Cosigned:
    lines: str  # the answer's body: signature lines, each ending in a newline


@dataclass(frozen=True, slots=True)
class Conflict:
    size: int  # the size the witness last cosigned (409)


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


Reply: TypeAlias = Cosigned | Conflict | Refused


class WitnessClient:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, *, ca_file: Path | None = None
    ) -> None:
        self._session = session
        self.endpoint = url.rstrip("/") + "/add-checkpoint"
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file is not None else True
        )

    async def add_checkpoint(self, old: int, proof: list[bytes], note: str) -> Reply:
        import aiohttp  # noqa: PLC0415 -- loaded already by the session's creator

        body = request_body(old, proof, note)
        try:
            async with self._session.post(self.endpoint, data=body, ssl=self._ssl) as response:
                answer = await response.content.read(MAX_ANSWER + 1)
                status = response.status
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise WitnessUnreachable(
                f"{self.endpoint}: {type(exc).__name__}: {str(exc) or 'no answer in time'}"
            ) from exc
        if len(answer) > MAX_ANSWER:
            raise WitnessUnreachable(f"{self.endpoint}: an answer over {MAX_ANSWER} bytes")
        text = answer.decode("utf-8", errors="replace")
        if status == 200:
            return Cosigned(text)
        if status == 409:
            try:
                if content_type != "text/x.tlog.size":
                    raise ProtocolError(f"409 with content type {content_type!r}")
                return Conflict(parse_size(answer))
            except ProtocolError as exc:
                raise WitnessUnreachable(
                    f"{self.endpoint}: a 409 that is not a size: {exc}"
                ) from exc
        if status in (400, 403, 404, 422):
            return Refused(status, text.strip()[:500])
        raise WitnessUnreachable(f"{self.endpoint}: HTTP {status}: {text.strip()[:200]}")
