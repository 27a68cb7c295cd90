"""``einblick policy`` through the CLI's ``main``, on the shipped example files: what explain
prints field by field, device text made visible, and every mistake an exit code 2 with a
diagnosis rather than a traceback."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main
from policies.examples import example_path

VANS = str(example_path("vans"))
BAKERY = str(example_path("bakery"))
FIX = '{"_type":"location","lat":52.195913,"lon":7.688245,"tid":"C1","tst":1699882482}'
NOW = "2026-06-03T09:30:00Z"


def explain(message: str, *more: str) -> list[str]:
    return ["policy", "explain", VANS, "--topic", "owntracks/jjolie/van-01", "--message", message,
            "--now", NOW, *more]  # fmt: skip


def test_explain_says_per_field_what_left_and_which_line_decided(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(explain(FIX, "--lang", "en")) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "[logistics] altered"
    assert lines[1] == "  topic:   fleet/spedition-weber/van-01/position"
    # The payload as it leaves: coarsened, truncated to the minute, the tracker id kept back.
    assert json.loads(lines[2].removeprefix("  payload: ")) == {
        "_type": "location",
        "lat": 52.194125,
        "lon": 7.685476,
        "tst": 1699882440,
    }
    assert "Legal basis: legitimate interests" in lines[3]
    assert lines[4:] == [
        "    _type: shared, by '_type'",
        "    lat: altered (coarsen 500 m), by 'lat'",
        "    lon: altered (coarsen 500 m), by 'lat'",
        "    tst: altered (truncate minute), by 'tst'",
        "    tid: withheld, no line of the grant names it",
        "    $topic.driver: withheld, no line of the grant names it",
    ]
    assert "random key for this run" in err  # pseudonyms here are not the gateway's


def test_explain_defaults_to_the_policy_s_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(explain(FIX)) == 0
    english = capsys.readouterr().out
    assert main(explain(FIX, "--lang", "de")) == 0
    assert capsys.readouterr().out == english  # the vans policy is written in English


def test_device_text_is_made_visible_not_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    hostile = FIX.replace('"tid"', '"t\\u001b[2Jid"')
    assert main(explain(hostile, "--lang", "en")) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "    t\\u001b[2Jid: withheld, no line of the grant names it" in out.splitlines()


@pytest.mark.parametrize(
    ("now", "words"),
    [("2026-06-03T09:30:00", "--now: add a timezone"), ("yesterday", "--now: expected an ISO")],
)
def test_a_wrong_time_is_a_diagnosis_naming_the_option(
    capsys: pytest.CaptureFixture[str], now: str, words: str
) -> None:
    argv = explain(FIX)
    argv[argv.index(NOW)] = now
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"einblick: {VANS}: {words}") and "Traceback" not in err


def test_check_against_the_configured_recipients_names_file_and_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["policy", "check", BAKERY, VANS, "--recipients", "oven-maker,energy-provider"])
    out, err = capsys.readouterr()
    assert f"{BAKERY}: ok: " in out and f"{VANS}: ok" not in out
    assert f"{VANS}:" in err and "unknown recipient 'logistics'" in err
    assert "no --recipients given" not in err


def test_a_missing_file_is_a_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "describe", "/nonexistent/policy.yaml"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/policy.yaml" in err and "Traceback" not in err


def test_describe_in_the_asked_language_and_suggest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "describe", BAKERY, "--lang", "en"]) == 0
    assert capsys.readouterr().out.startswith("Who gets what, and why")
    assert main(["policy", "suggest", "--profile", "owntracks"]) == 0
    assert "fields:" in capsys.readouterr().out
