"""A witness's directory: its name, its cosigner key, the logs it follows, its state.

    D/witness.name    the witness's name (a schema-less URL, e.g. witness.example/w1)
    D/witness.key     its Ed25519 private key, PEM, mode 0600, never leaves this machine
    D/logs.yaml       the logs it follows: origin and the log keys trusted for it
    D/witness.db      what it cosigned per origin, and refused forks (gateway/witness/state.py)

The public half is printed by ``einblick witness init`` as a c2sp.org/signed-note vkey of type
0x04 (tlog-cosignature's Ed25519 cosigner key): that line is what a gateway's ``witnesses:``
configuration and a customer's ``einblick verify --witness`` take.

``logs.yaml``::

    logs:
      - origin: einblick.example/bakery-box-3f9a1c/baeckerei-schmidt
        keys:
          - einblick.example/bakery-box-3f9a1c/baeckerei-schmidt+1a2b3c4d+AeR…

Each log's keys are Ed25519 note keys (type 0x01); the file is read again whenever it changes,
so following one more log needs no restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError
from gateway.log.keys import Signer as KeyFile
from gateway.log.note import COSIGNATURE_TYPE, ED25519_TYPE, NoteError, Signer, Verifier

__all__ = [
    "FollowedLogs",
    "WitnessDirectory",
    "init_witness",
]

MAX_LOGS_FILE = 1 << 20
_LOGS_TEMPLATE = """\
# The logs this witness follows: each log's origin line and the keys trusted to sign its
# checkpoints (vkey lines, as 'einblick status' on the gateway prints them). Saved changes
# apply to the next request; no restart needed.
logs: []
"""


class _Log(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    origin: str = Field(min_length=1, max_length=1000)
    keys: list[str] = Field(min_length=1, max_length=16)

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for vkey in value:
            try:
                verifier = Verifier.parse(vkey)
            except NoteError as exc:
                raise ValueError(str(exc)) from exc
            if verifier.sig_type != ED25519_TYPE:
                raise ValueError(
                    f"{verifier.name}: a log signs checkpoints with an Ed25519 note key (type "
                    f"0x01); this is type 0x{verifier.sig_type:02x} (a witness key?)"
                )
        return value


class _LogsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    logs: list[_Log] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FollowedLogs:
    """origin → the verifiers trusted for its checkpoints, and the file's mtime it came from."""

    trusted: dict[str, tuple[Verifier, ...]]
    mtime_ns: int

    @classmethod
    def load(cls, path: Path) -> FollowedLogs:
        try:
            stat = path.stat()
            if stat.st_size > MAX_LOGS_FILE:
                raise ConfigError(str(path), f"{stat.st_size} bytes; a logs file is < 1 MiB")
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read the followed logs: {exc.strerror}") from exc
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), f"not a YAML file: {exc}") from exc
        try:
            parsed = _LogsFile.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(p) for p in error["loc"]) or None
            raise ConfigError(
                str(path), error["msg"].removeprefix("Value error, "), key=key
            ) from exc
        trusted: dict[str, tuple[Verifier, ...]] = {}
        for log in parsed.logs:
            if log.origin in trusted:
                raise ConfigError(str(path), f"the origin {log.origin!r} is listed twice")
            trusted[log.origin] = tuple(Verifier.parse(k) for k in log.keys)
        return cls(trusted, stat.st_mtime_ns)


class WitnessDirectory:
    def __init__(self, path: Path, logs: Path | None = None) -> None:
        self.path = path
        self.logs_path = logs if logs is not None else path / "logs.yaml"
        self._followed: FollowedLogs | None = None

    @property
    def key_path(self) -> Path:
        return self.path / "witness.key"

    @property
    def name_path(self) -> Path:
        return self.path / "witness.name"

    @property
    def state_path(self) -> Path:
        return self.path / "witness.db"

    def signer(self) -> Signer:
        try:
            name = self.name_path.read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                str(self.name_path),
                f"cannot read the witness's name ({exc.strerror}); is {self.path} a directory "
                "made by 'einblick witness init'?",
            ) from exc
        KeyFile.load(self.key_path)  # refuses a key others can read, says how to fix it
        private = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(str(self.key_path), "expected the witness's Ed25519 key")
        try:
            return Signer(name, private, COSIGNATURE_TYPE)
        except NoteError as exc:
            raise ConfigError(str(self.name_path), str(exc)) from exc

    def followed(self) -> FollowedLogs:
        """The followed logs, read again when the file changed since the last call."""
        try:
            mtime = self.logs_path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigError(
                str(self.logs_path), f"cannot read the followed logs: {exc.strerror}"
            ) from exc
        if self._followed is None or self._followed.mtime_ns != mtime:
            self._followed = FollowedLogs.load(self.logs_path)
        return self._followed


def init_witness(path: Path, name: str) -> Verifier:
    """A new witness directory: name, key (never overwritten) and an empty logs file."""
    try:
        Verifier(name, COSIGNATURE_TYPE, bytes(32))  # the name's rules, before anything is written
    except NoteError as exc:
        raise ConfigError(str(path), f"witness name: {exc}") from exc
    path.mkdir(parents=True, exist_ok=True)
    directory = WitnessDirectory(path)
    KeyFile.generate(directory.key_path)  # O_EXCL: an existing key is refused, not replaced
    directory.name_path.write_text(name + "\n", "utf-8")
    if not directory.logs_path.exists():
        directory.logs_path.write_text(_LOGS_TEMPLATE, "utf-8")
    os.chmod(path, 0o700)
    return directory.signer().verifier
