"""The gateway's errors: one tree under EinblickError, each message naming the object and what
was expected and found, each carrying its context as attributes."""

from __future__ import annotations

from gateway.errors import (
    BrokerError,
    BundleError,
    ChainBroken,
    ConfigError,
    EntryInvalid,
    GatewayError,
    KeyFileError,
    LogError,
    SignatureInvalid,
    StoreError,
)
from policies.errors import EinblickError, LocatedError


def test_every_gateway_error_is_an_einblick_error_the_cli_catches() -> None:
    for kind in (BrokerError, StoreError, LogError, EntryInvalid, ChainBroken, BundleError):
        assert issubclass(kind, GatewayError) and issubclass(kind, EinblickError)
    assert issubclass(ConfigError, LocatedError)
    for kind in (EntryInvalid, KeyFileError, SignatureInvalid, ChainBroken, BundleError):
        assert issubclass(kind, LogError)


def test_a_configuration_error_points_at_file_line_column_and_key() -> None:
    exc = ConfigError("einblick.yaml", "must be at least 1", line=12, column=5, key="port")
    assert str(exc) == "einblick.yaml:12:5: port: must be at least 1"
    assert (exc.path, exc.line, exc.column, exc.key) == ("einblick.yaml", 12, 5, "port")
    assert str(ConfigError("einblick.yaml", "not found")) == "einblick.yaml: not found"


def test_a_broken_chain_says_where_what_was_expected_and_what_was_found() -> None:
    exc = ChainBroken("baeckerei-schmidt", 41, "hash mismatch", "ab12", "9f3c")
    assert str(exc) == (
        "entry 41 of customer baeckerei-schmidt: hash mismatch: expected ab12, found 9f3c"
    )
    assert (exc.customer, exc.index, exc.expected, exc.found) == (
        "baeckerei-schmidt",
        41,
        "ab12",
        "9f3c",
    )


def test_the_other_log_errors_carry_their_context() -> None:
    assert str(EntryInvalid("customer", "too long")) == "log entry: customer: too long"
    assert str(KeyFileError("/k.pem", "readable by others")) == "/k.pem: readable by others"
    signature = SignatureInvalid("checkpoint 7", "ab12")
    assert str(signature) == "checkpoint 7: signature does not verify (key ab12)"
    assert (signature.what, signature.key_id) == ("checkpoint 7", "ab12")
    assert str(BundleError(3, "not JSON")) == "bundle line 3: not JSON"
    assert str(BundleError(0, "empty")) == "bundle: empty"
