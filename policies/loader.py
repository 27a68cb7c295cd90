"""Reading a policy file: size limit, safe YAML without aliases, pydantic errors at file:line.

Every problem is one ``PolicyError(path, message, line=, column=, key=)``; nothing here lets a
traceback through for a user mistake. Defences, in the order they apply:

- files over ``MAX_POLICY_BYTES`` are refused before a byte is parsed;
- text must be UTF-8;
- YAML aliases (``*anchor``) are refused, so "billion laughs" expansions cannot happen, and
  nesting deeper than ``MAX_DEPTH`` is refused while composing;
- the composed node tree gives every value its line and column, so a pydantic error location
  (``grants.0.fields.serial``) is reported where it is in the file;
- references between parts of the document (a grant naming a device that does not exist) are
  checked here too, with the location of the offending entry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policies.errors import LocatedError, PolicyError
from policies.model import PolicyDocument

__all__ = [
    "MAX_DEPTH",
    "MAX_POLICY_BYTES",
    "Marks",
    "load_policy",
    "load_policy_text",
    "load_yaml_model",
    "locate",
]

MAX_POLICY_BYTES = 1 << 20  # a year of growth for a big site is still far below 1 MiB
MAX_DEPTH = 32

Marks = dict[tuple[int | str, ...], tuple[int, int]]
M = TypeVar("M", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not allowed in a policy; write the value out",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.MarkedYAMLError(
                    problem=f"nested deeper than {MAX_DEPTH} levels",
                    problem_mark=event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _marks(node: yaml.Node, loc: tuple[int | str, ...], into: Marks) -> None:
    into[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                # The key's own position is the most useful place to point at for that entry.
                into[(*loc, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
                _marks(value, (*loc, key.value), into)
                into[(*loc, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _marks(item, (*loc, index), into)


def _parse(
    text: str,
    path: str,
    error: type[LocatedError] = PolicyError,
    top: str = "'einblick_policy: 1' at the top",
) -> tuple[Any, Marks]:
    try:
        loader = _Loader(text)  # the reader refuses control characters here, before parsing
    except yaml.YAMLError as exc:
        raise error(path, f"invalid YAML: {exc}") from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise error(path, f"the file is empty; expected {top}")
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(
            path,
            f"invalid YAML: {exc.problem or exc.context}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise error(path, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    marks: Marks = {}
    _marks(node, (), marks)
    return data, marks


def _message(error: ErrorDetails, spec: str = "policies/model.py") -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key (check the spelling; see {spec} for the format)"
    if kind == "missing":
        return "required key is missing"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")


def _key(loc: tuple[int | str, ...]) -> str | None:
    # Drop pydantic's union branch names (``function-after[...]``, ``LocalizedText``, tags).
    parts = [str(p) for p in loc if isinstance(p, int) or ("[" not in p and not p[:1].isupper())]
    return ".".join(parts) or None


def load_policy_text(text: str, path: str = "<string>") -> PolicyDocument:
    """Validate a policy given as text; ``path`` is only used in error messages."""
    raw = text.encode("utf-8", errors="surrogatepass")
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(
            path, f"file is {len(raw)} bytes; a policy must be under {MAX_POLICY_BYTES} bytes"
        )
    return _validate(text, raw, path)


def load_policy(path: str | os.PathLike[str]) -> PolicyDocument:
    """Read and validate a policy file; every problem is a PolicyError with file:line:column."""
    source = Path(path)
    name = str(source)
    try:
        size = source.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise PolicyError(
                name, f"file is {size} bytes; a policy must be under {MAX_POLICY_BYTES} bytes"
            )
        with source.open("rb") as handle:
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(name, f"cannot read the policy: {exc.strerror or exc}") from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(name, f"file grew over {MAX_POLICY_BYTES} bytes while reading")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(name, f"not UTF-8 text (byte {exc.start})") from exc
    return _validate(text, raw, name)


def _validate(text: str, raw: bytes, path: str) -> PolicyDocument:
    data, marks = _parse(text, path)
    if not isinstance(data, dict):
        raise PolicyError(path, "expected a mapping with 'einblick_policy: 1' at the top", line=1)
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line, column = locate(marks, loc)
        raise PolicyError(path, _message(error), line=line, column=column, key=_key(loc)) from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise PolicyError(path, f"cannot validate the policy: {exc}") from exc
    doc._source = path
    doc._sha256 = hashlib.sha256(raw).hexdigest()
    doc._marks = marks
    check_references(doc)
    return doc


def load_yaml_model(
    model: type[M], text: str, path: str, *, error: type[LocatedError], top: str, spec: str
) -> tuple[M, Marks]:
    """Read ``text`` with the policy file's YAML defences and validate it as ``model``.

    For Einblick's other YAML files (payload profiles): the same alias and depth limits, and a
    pydantic error reported as ``error(path, ..., line=, column=, key=)``. ``top`` says what the
    file should start with, for the message about an empty file; ``spec`` names where the format
    is described, for the message about an unknown key. The marks locate later checks.
    """
    data, marks = _parse(text, path, error, top)
    if not isinstance(data, dict):
        raise error(path, f"expected a mapping with {top}", line=1)
    try:
        return model.model_validate(data), marks
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line, column = locate(marks, loc)
        raise error(path, _message(first, spec), line=line, column=column, key=_key(loc)) from exc


def locate(marks: Marks, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """Line and column of ``loc`` (or of its nearest enclosing entry) in the file."""
    for end in range(len(loc), -1, -1):
        mark = marks.get(loc[:end])
        if mark is not None:
            return mark
    return None, None


def _fail(doc: PolicyDocument, loc: tuple[int | str, ...], message: str) -> PolicyError:
    line, column = doc.locate(loc)
    return PolicyError(
        doc.source, message, line=line, column=column, key=".".join(str(p) for p in loc)
    )


def check_references(doc: PolicyDocument) -> None:
    """Cross-checks pydantic cannot do field by field: unique ids, grants naming real devices."""
    device_ids: set[str] = set()
    kinds: set[str] = set()
    for index, device in enumerate(doc.devices):
        if device.id in device_ids:
            raise _fail(doc, ("devices", index, "id"), f"device id {device.id!r} is used twice")
        device_ids.add(device.id)
        kinds.add(device.kind)
    grant_ids: set[str] = set()
    for index, grant in enumerate(doc.grants):
        if grant.id in grant_ids:
            raise _fail(doc, ("grants", index, "id"), f"grant id {grant.id!r} is used twice")
        grant_ids.add(grant.id)
        if isinstance(grant.devices, list):
            for position, device_id in enumerate(grant.devices):
                if device_id not in device_ids:
                    known = ", ".join(sorted(device_ids)) or "none"
                    raise _fail(
                        doc,
                        ("grants", index, "devices", position),
                        f"no device {device_id!r} in this policy (devices: {known})",
                    )
        for position, kind in enumerate(grant.kinds):
            if kind not in kinds:
                known = ", ".join(sorted(kinds)) or "none"
                raise _fail(
                    doc,
                    ("grants", index, "kinds", position),
                    f"no device of kind {kind!r} in this policy (kinds: {known})",
                )
