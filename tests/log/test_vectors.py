"""Every checked-in vector (tests/log/vectors/) gets the verdict and first bad entry it lists."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from gateway.commands.log import verify_command

VECTORS = Path(__file__).with_name("vectors")


def _vectors() -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads((VECTORS / "vectors.json").read_text())
    return listed


def test_the_vector_directory_is_not_empty() -> None:
    listed = _vectors()
    assert len(listed) >= 15
    assert {v["expect"] for v in listed} == {0, 1, 2, 3}


def test_every_vector_gets_its_verdict_and_names_its_first_bad_entry() -> None:
    wrong = []
    for vector in _vectors():
        out, err = io.StringIO(), io.StringIO()
        since = vector.get("since")
        code = verify_command(
            bundle=VECTORS / vector["file"],
            db=None,
            customer=None,
            key=VECTORS / vector["key"],
            since=None if since is None else VECTORS / since,
            out=out,
            err=err,
        )
        said = err.getvalue()
        if code != vector["expect"]:
            wrong.append(f"{vector['file']}: exit {code}, expected {vector['expect']}: {said}")
        elif vector["index"] is not None and f"entry {vector['index']}:" not in said:
            wrong.append(f"{vector['file']}: expected entry {vector['index']} named: {said}")
        elif code == 0 and "OK" not in out.getvalue():
            wrong.append(f"{vector['file']}: exit 0 without OK")
        elif code != 0 and "OK" in out.getvalue():
            wrong.append(f"{vector['file']}: OK printed with exit {code}")
    assert not wrong, "\n".join(wrong)
