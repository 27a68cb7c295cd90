"""The JSON documents an entry is written as, typed: its body (hashed into the log, kept for
ever) and its names document (committed per subject, erasable). ``gateway.log.entry`` builds
them from a draft; their keys and value types are what ``gateway/log/SPEC.md`` §3 lists, so a
change to either shape is a type error here before it is a changed digest in a customer's log.

Only the shape is typed: the bytes are RFC 8785 of the dict (``gateway.log.jcs.canonical``),
which sorts the keys, so building a document with these types writes what it always wrote.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = ["BodyV2", "NamesDocument", "ShownBody"]


class NamesDocument(TypedDict):
    """What a device or a person chose: field paths, the texts naming the device and people,
    and (for the kinds in ``entry.NAMED_PARAMS``) the reason's parameters."""

    shared: list[str]
    altered: list[list[str]]  # [path, treatment, detail]
    withheld: list[str]
    text_de: str
    text_en: str
    reason_params: NotRequired[dict[str, str]]


class _Values(TypedDict):
    """The policy's and the gateway's values, in every body and in every body shown."""

    kind: str
    customer: str | None
    device: str | None
    recipient: str | None
    outcome: str | None
    grant: str | None
    policy_version: str | None
    purpose: dict[str, str]
    legal_basis: str | None
    reason: str | None
    subject: str | None
    omitted: NotRequired[dict[str, int]]  # only when caps left paths out (old digests kept)
    # A decision taken again at send time: the tree index (in the same log) of the decision it
    # replaces; only then (older bodies keep their digests). SPEC.md, "Bodies version 2".
    supersedes: NotRequired[int]


class BodyV2(_Values):
    """The repeated part of a version 2 entry: the policy's and the gateway's values only,
    the names document present as its hex commitment ``names``."""

    v: Literal[2]
    names: str
    reason_params: NotRequired[dict[str, str]]  # the gateway's own records' (keys, counts)


class ShownBody(_Values):
    """A body as the log's reader shows it: a version 2 body joined with its names document
    (``gateway.log.names.joined``), or a version 1 body as stored, which held the same values
    in clear. ``text_de``/``text_en`` are references the texts are looked up by (a version 1
    body's text digests, ``<names commitment>/de`` and ``/en`` for a version 2 body)."""

    shared: list[str]
    altered: list[list[str]]  # [path, treatment, detail]
    withheld: list[str]
    reason_params: dict[str, str]
    text_de: str
    text_en: str
    v: NotRequired[Literal[2]]  # version 2 bodies only
    names: NotRequired[str]  # version 2 bodies only: the names commitment in hex
    erased: NotRequired[Literal[True]]  # the names document was erased: no paths, no params
