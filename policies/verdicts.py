"""The decisions the engine builds: withheld (and why), released (shared or altered), and
withheld because the engine itself failed on a message (``internal_error``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from policies.body import WHOLE
from policies.compiler import CompiledGrant
from policies.decision import Alteration, Decision, Outcome, Reason
from policies.listing import Listed
from policies.paths import Release
from policies.routes import Route

__all__ = ["internal", "released", "withheld"]

_EMPTY: Mapping[str, str] = {}
_NO_REASONS: Mapping[str, Reason] = {}
_NONE: Mapping[str, int] = {}

# The engine's logger by name: installers filter on "policies.engine" for its failures.
log = logging.getLogger("policies.engine")


def withheld(
    route: Route,
    recipient: str | None,
    grant: CompiledGrant | None,
    reason: Reason,
    listed: Listed[str],
    *,
    rel: Release | None = None,
) -> Decision:
    """Nothing leaves for ``recipient``; ``listed`` the body's leaves, each withheld; with
    ``rel``, the field problems the grant's walk met."""
    omitted = {"withheld": listed.more, "field_reasons": rel.problems_more if rel else 0}
    return Decision(
        route.policy.customer,
        route.device.id,
        recipient,
        Outcome.WITHHELD,
        grant=grant.id if grant else None,
        policy_version=route.policy.version,
        purpose=grant.purpose if grant else _EMPTY,
        legal_basis=grant.legal_basis if grant else None,
        withheld=tuple(listed.items),
        reason=reason,
        stream=route.stream,
        field_reasons=rel.problems if rel else _NO_REASONS,
        omitted={name: n for name, n in omitted.items() if n} or _NONE,
    )


def released(
    route: Route,
    grant: CompiledGrant,
    topic: str,
    *,
    body: bytes,
    shared: Sequence[str],
    altered: Sequence[Alteration],
    withheld: tuple[str, ...],
    opaque: bool,
    field_reasons: Mapping[str, Reason] = _NO_REASONS,
    omitted: Mapping[str, int] = _NONE,
    raised_by: tuple[str, ...] = (),
) -> Decision:
    return Decision(
        route.policy.customer,
        route.device.id,
        grant.recipient,
        Outcome.ALTERED if altered else Outcome.SHARED,
        grant=grant.id,
        policy_version=route.policy.version,
        purpose=grant.purpose,
        legal_basis=grant.legal_basis,
        topic=topic,
        payload=body,
        shared=tuple(shared),
        altered=tuple(altered),
        withheld=withheld,
        opaque=opaque,
        stream=route.stream,
        field_reasons=field_reasons,
        omitted=omitted,
        raised_by=raised_by,
    )


def internal(
    route: Route | None,
    recipient: str | None,
    grant: CompiledGrant | None,
    exc: BaseException,
    topic: str,
) -> Decision:
    # Withheld, and the installer gets the traceback: a bug or a message we cannot handle.
    log.error(
        "the policy engine failed on a message on topic %.200r (customer %s, grant %s, "
        "recipient %s); it is withheld with reason internal_error",
        topic,
        route.policy.customer if route else None,
        grant.id if grant else None,
        recipient,
        exc_info=exc,
    )
    reason = Reason("internal_error", {"error": type(exc).__name__})
    return Decision(
        route.policy.customer if route else None,
        route.device.id if route else None,
        recipient,
        Outcome.WITHHELD,
        grant=grant.id if grant else None,
        policy_version=route.policy.version if route else None,
        withheld=WHOLE,
        reason=reason,
        stream=route.stream if route else None,
    )
