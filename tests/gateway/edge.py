"""An initialised gateway directory (``einblick init``) with the policies a test gives, and its
configuration loaded: for unit tests of the parts the gateway composes, without running it."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config, load_config
from gateway.operations.scaffold import InitOptions, init_directory

__all__ = ["edge_config"]


def edge_config(
    tmp_path: Path, policies: dict[str, str], *, edits: dict[str, str] | None = None
) -> Config:
    """``policies``: file name -> YAML, the only files in the policies directory."""
    directory = tmp_path / "edge"
    path = init_directory(InitOptions(directory=directory, broker_port=18830))
    for old in (directory / "policies").glob("*.yaml"):
        old.unlink()
    for name, text in policies.items():
        (directory / "policies" / name).write_text(text, encoding="utf-8")
    for old_text, new_text in (edits or {}).items():
        text = path.read_text(encoding="utf-8")
        assert old_text in text, f"{old_text!r} is not in the generated configuration"
        path.write_text(text.replace(old_text, new_text), encoding="utf-8")
    return load_config(path)
