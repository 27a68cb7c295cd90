"""Every checked-in vector gets the verdict and first bad entry it lists: the v3 vectors
(tests/log/vectors/, written by ``python -m tests.log.vectors.generate``) and the v2 ones
(tests/log/vectors/v2/, written by the v2 exporter before v3 and kept as they were, so a
customer's v2 export keeps verifying)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.commands.log import verify_command

HERE = Path(__file__).with_name("vectors")
LAYOUTS = {"v3": HERE, "v2": HERE / "v2"}


def _vectors(directory: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads((directory / "vectors.json").read_text())
    return listed


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_vector_directory_is_not_empty(layout: str) -> None:
    listed = _vectors(LAYOUTS[layout])
    assert len(listed) >= 23
    assert {v["expect"] for v in listed} == {0, 1, 2, 3}
    wanted = f'"format":"einblick-bundle/{layout}"'.encode()
    assert wanted in (LAYOUTS[layout] / "good.bundle").read_bytes()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_vector_gets_its_verdict_and_names_its_first_bad_entry(layout: str) -> None:
    directory = LAYOUTS[layout]
    wrong = []
    for vector in _vectors(directory):
        out, err = io.StringIO(), io.StringIO()
        since = vector.get("since")
        code = verify_command(
            bundle=directory / vector["file"],
            db=None,
            customer=None,
            key=directory / vector["key"],
            since=None if since is None else directory / since,
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
