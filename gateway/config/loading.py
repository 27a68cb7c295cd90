"""Reading einblick.yaml: size-bounded, UTF-8, YAML, validated; every problem a ConfigError that
names the file, the line and column, and the key, for an installer to fix it without a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from gateway.config.document import Config
from gateway.errors import ConfigError, LogError

__all__ = ["MAX_CONFIG_BYTES", "load_config", "stored_origin"]

MAX_CONFIG_BYTES = 1 << 20


def _locate(
    node: yaml.Node | None, loc: tuple[int | str, ...], *, at_key: bool = False
) -> tuple[int | None, int | None]:
    """Walk a composed YAML node along a pydantic error location to its line and column.

    ``at_key`` points at the last key itself rather than its value (for unknown keys)."""
    best = node
    for position, part in enumerate(loc):
        if best is None:
            break
        child: yaml.Node | None = None
        if isinstance(best, yaml.MappingNode):
            for key, value in best.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = key if at_key and position == len(loc) - 1 else value
                    break
        elif (
            isinstance(best, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(best.value)
        ):
            child = best.value[part]
        if child is None:
            break
        best = child
    if best is None:
        return None, None
    return best.start_mark.line + 1, best.start_mark.column + 1


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file; every problem is a ConfigError with file:line."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(str(source), f"cannot read the configuration: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(source), f"file is {len(raw)} bytes; a configuration is < 1 MiB")
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: object = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(str(source), f"not UTF-8 text (byte {exc.start})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            str(source),
            f"invalid YAML: {exc.problem}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise ConfigError(str(source), f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(source), "expected a mapping with 'einblick_config: 1' at the top")
    if "source" in data:
        raise ConfigError(str(source), "'source' is set by Einblick, not by the file", key="source")
    try:
        config = Config.model_validate({**data, "source": source.resolve()})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line, column = _locate(node, loc, at_key=error["type"] == "extra_forbidden")
        key = ".".join(str(p) for p in loc) or None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README 'Configuration')"
        elif error["type"] == "missing":
            message = "required key is missing"
        raise ConfigError(str(source), message, line=line, column=column, key=key) from exc
    if "instance" not in data:
        # A configuration that names no instance takes the one its log already carries: the
        # log's origin is fixed for ever, and an upgrade (0.1.0 defaulted to 'edge-01'), a new
        # hostname or a restore onto another machine must not make the gateway refuse its log.
        stored = stored_origin(config.database_path)
        if stored is not None:
            config = config.model_copy(update={"instance": stored})
    return config


def stored_origin(database: Path) -> str | None:
    """The origin (instance name) a log database was written under, or None without one."""
    if not database.is_file():
        return None
    from gateway.log.reader import Reader  # noqa: PLC0415 -- the log package loads config

    try:
        reader = Reader.open(database)
    except LogError:
        return None  # not readable here: the gateway's own open says what is wrong
    reader.close()
    return reader.origin or None
