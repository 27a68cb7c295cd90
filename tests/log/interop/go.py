"""Build and run ``tlogcheck.go`` against Go's own golang.org/x/mod/sumdb/{note,tlog}.

The Go packages come from Debian (golang-go, golang-golang-x-mod-dev; ``dev.py test`` installs
them like Mosquitto), built offline in GOPATH mode so no module download is ever attempted.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("tlogcheck.go")
GOPATH = Path("/usr/share/gocode")


def build(directory: Path) -> Path:
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        raise RuntimeError(
            "Go and its sumdb packages are needed for the interoperability tests: "
            "apt-get install golang-go golang-golang-x-mod-dev (dev.py test does this as root)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE, directory / SOURCE.name)
    env = {
        **os.environ,
        "GOPATH": str(GOPATH),
        "GO111MODULE": "off",
        "GOCACHE": str(directory / "cache"),
        "GOFLAGS": "",
    }
    subprocess.run(
        [go, "build", "-o", "tlogcheck", SOURCE.name],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
    )
    return directory / "tlogcheck"


@dataclass(frozen=True)
class GoVerdict:
    ok: bool
    size: int
    root: bytes
    inclusion: dict[int, list[bytes]]
    consistency: dict[int, list[bytes]]
    error: str
    records: tuple[int, ...] = ()  # indexes of single-entry proofs Go accepted


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check(
    binary: Path,
    *,
    vkey: str,
    note: str | Sequence[str],
    leaves: Sequence[bytes],
    inclusion: Sequence[tuple[int, Sequence[bytes]]] = (),
    consistency: Sequence[tuple[int, bytes, Sequence[bytes]]] = (),
    records: Sequence[tuple[int, bytes, Sequence[bytes]]] = (),
) -> GoVerdict:
    notes = [note] if isinstance(note, str) else list(note)
    lines = [f"vkey {vkey}", *(f"note {_b64(n.encode())}" for n in notes)]
    lines += [f"leaf {_b64(leaf)}" for leaf in leaves]
    lines += [" ".join(["inclusion", str(index), *map(_b64, proof)]) for index, proof in inclusion]
    lines += [
        " ".join(["consistency", str(old), _b64(root), *map(_b64, proof)])
        for old, root, proof in consistency
    ]
    lines += [
        " ".join(["record", str(index), _b64(data), *map(_b64, proof)])
        for index, data, proof in records
    ]
    done = subprocess.run(
        [str(binary)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    verdict = GoVerdict(False, -1, b"", {}, {}, done.stderr.strip(), ())
    if done.returncode != 0:
        return verdict
    size, root = -1, b""
    proven: list[int] = []
    inc: dict[int, list[bytes]] = {}
    con: dict[int, list[bytes]] = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields[0] == "ok" and int(fields[1]) > size:
            size, root = int(fields[1]), base64.b64decode(fields[2])
        elif fields[0] == "gorecord":
            proven.append(int(fields[1]))
        elif fields[0] == "goinclusion":
            inc[int(fields[1])] = [base64.b64decode(h) for h in fields[2:]]
        elif fields[0] == "goconsistency":
            con[int(fields[1])] = [base64.b64decode(h) for h in fields[2:]]
    return GoVerdict(True, size, root, inc, con, "", tuple(proven))
