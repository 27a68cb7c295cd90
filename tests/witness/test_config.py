"""The ``witnesses:`` section of einblick.yaml: what an installer may get wrong, and reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.log.note import COSIGNATURE_TYPE, ED25519_TYPE, Signer
from gateway.operations.reload import plan

WITNESS = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE).verifier
LOG_KEY = Signer("log.example/a", Ed25519PrivateKey.generate(), ED25519_TYPE).verifier


def config_text(*witnesses: tuple[str, str, str]) -> str:
    text = "einblick_config: 1\ninstance: edge-07\nwitnesses:\n"
    for name, url, vkey in witnesses:
        text += f"  - name: {name}\n    url: {url}\n    vkey: {vkey}\n"
    return text


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "einblick.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_a_witness_loads(tmp_path: Path) -> None:
    config = load(tmp_path, config_text(("verband", "https://w.example:7380/x", WITNESS.vkey)))
    (witness,) = config.witnesses
    assert (witness.name, witness.url, witness.vkey) == (
        "verband",
        "https://w.example:7380/x",
        WITNESS.vkey,
    )
    assert load(tmp_path, "einblick_config: 1\ninstance: edge-07\n").witnesses == []


@pytest.mark.parametrize(
    ("witnesses", "where", "words"),
    [
        (
            [("verband", "https://w.example", LOG_KEY.vkey)],
            ":6:11: witnesses.0.vkey:",
            "a witness key is a cosigner key (type 0x04",
        ),
        (
            [("verband", "https://w.example", WITNESS.vkey.replace("+", "+0", 1))],
            ":6:11: witnesses.0.vkey:",
            "key ID",
        ),
        (
            [("verband", "mqtt://w.example", WITNESS.vkey)],
            ":5:10: witnesses.0.url:",
            "http(s)://host:port",
        ),
        (
            [("Verband", "https://w.example", WITNESS.vkey)],
            ":4:11: witnesses.0.name:",
            "lower-case",
        ),
        (
            [("a", "https://a.example", WITNESS.vkey), ("b", "https://b.example", WITNESS.vkey)],
            "witnesses",
            "is listed twice",
        ),
    ],
)
def test_a_wrong_witness_entry_names_line_and_key(
    tmp_path: Path, witnesses: list[tuple[str, str, str]], where: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config_text(*witnesses))
    assert where in str(caught.value)
    assert words in str(caught.value)


def test_a_changed_witness_list_waits_for_a_restart(tmp_path: Path) -> None:
    # Saying "applied" for a list the running submitters never read would be a false statement.
    old = load(tmp_path, config_text(("verband", "https://w.example", WITNESS.vkey)))
    new = load(tmp_path, config_text(("verband", "https://other.example", WITNESS.vkey)))
    (change,) = plan(old, new)
    assert (change.key, change.action) == ("witnesses", "restart")
