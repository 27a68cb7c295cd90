"""``einblick policy`` through the CLI's ``main``, on the shipped example files: what explain
prints field by field, device text made visible, and every mistake an exit code 2 with a
diagnosis rather than a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.operations.scaffold import InitOptions, init_directory
from policies.examples import example_path
from tests.faults.cluster_site import customer_policy

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
    assert lines[1] == "  grant:   delivery-tracking"  # the only release: no "1 of n"
    del lines[1]
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


OVERLAP = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: en
timezone: Europe/Berlin
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics: [{pattern: "bakery/oven-1/telemetry", stream: telemetry}]
grants:
  - id: maintenance
    recipient: oven-maker
    purpose: {de: "Fernwartung", en: "Remote maintenance"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}"
    fields: {temperature: {round: 0.5}, door_open: keep}
  - id: daytime
    recipient: oven-maker
    purpose: {de: "Auswertung", en: "Analysis"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}/day"
    fields: {temperature: {round: 5}}
"""


def test_explain_lists_each_release_to_a_recipient_with_its_grant_as_the_log_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two grants for one recipient give it two releases of one message (policies/combine.py).
    policy = tmp_path / "bakery.yaml"
    policy.write_text(OVERLAP, encoding="utf-8")
    message = '{"temperature": 182.7, "door_open": true, "serial": "X1"}'
    argv = ["policy", "explain", str(policy), "--topic", "bakery/oven-1/telemetry",
            "--message", message, "--now", NOW]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    releases = out.split("[oven-maker] ")[1:]
    assert [r.splitlines()[1] for r in releases] == [
        "  grant:   daytime (release 1 of 2 to oven-maker)",
        "  grant:   maintenance (release 2 of 2 to oven-maker)",
    ]
    day, maintenance = ([ln.strip() for ln in r.splitlines()] for r in releases)
    assert 'payload: {"temperature":185.0}' in day
    assert (
        "door_open: not in this release; it left in the release of grant 'maintenance' to the "
        "same recipient"
    ) in day
    assert "temperature: altered (round 5), by 'temperature' of grant 'daytime'" in maintenance
    # Field lines and the log's explanation agree: what each calls kept here is what the
    # lines call withheld (door_open reached the recipient, so it is kept here in neither).
    for lines in (day, maintenance):
        (text,) = [ln for ln in lines if ln.startswith("oven-maker received")]
        kept = text.split("Kept here: ", 1)[1].split(".", 1)[0].split(", ")
        withheld = [ln.split(":", 1)[0] for ln in lines if ": withheld," in ln]
        assert kept == withheld == ["serial"]


def test_check_refuses_a_topic_in_another_customers_namespace_as_the_gateway_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same rule as the gateway's (gateway/devices/registry.py ``check_namespace``): a
    file the gateway would refuse is not reported ok."""
    text = Path(BAKERY).read_text(encoding="utf-8")
    first = text.split('pattern: "', 1)[1].split('"', 1)[0]
    taking = tmp_path / "taking.yaml"
    taking.write_text(text.replace(first, "devices/werk/press/telemetry", 1), encoding="utf-8")
    assert main(["policy", "check", str(taking)]) == 2
    out, err = capsys.readouterr()
    assert f"{taking}: ok" not in out
    assert "lies in the registry's namespace devices/" in err and f"{taking}:" in err


def test_check_with_a_config_checks_beside_that_gateways_files_and_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that passes on its own but that the gateway would refuse: another customer's
    topic, a pattern over a device registered for its own customer. With ``--config`` it is
    refused here as there, naming both places; the file it replaces (same name) is not counted
    as a second file for the customer."""
    config_path = str(init_directory(InitOptions(directory=tmp_path / "edge")))
    bakery = load_config(config_path).policies_path / "bakery.yaml"
    text = bakery.read_text(encoding="utf-8")
    rival = tmp_path / "rival.yaml"
    rival.write_text(text.replace("customer: baeckerei-schmidt", "customer: rival"), "utf-8")
    assert main(["policy", "check", str(rival)]) == 0  # on its own: nothing to compare with
    capsys.readouterr()
    assert main(["policy", "check", str(rival), "--config", config_path]) == 2
    out, err = capsys.readouterr()
    assert f"{rival}: ok" in out  # it loads; it cannot run beside the bakery's
    assert "overlaps 'bakery/oven-1/telemetry'" in err and "bakery.yaml" in err
    assert f"{rival}:" in err
    assert "this customer shares nothing" not in err  # the running gateway's words

    edited = tmp_path / "bakery.yaml"  # the installer's copy of the file it replaces
    edited.write_text(text.replace("Backofen 1", "Ofen 1"), "utf-8")
    assert main(["policy", "check", str(edited), "--config", config_path]) == 0
    assert f"{edited}: ok: baeckerei-schmidt" in capsys.readouterr().out

    add = ["device", "add", "--customer", "baeckerei-schmidt", "--name", "Sensor 1"]
    assert main([*add, "--config", config_path]) == 0
    capsys.readouterr()
    wide = text.replace(
        '      - pattern: "bakery/oven-1/status"',
        '      - pattern: "devices/baeckerei-schmidt/+/telemetry"\n'
        "        stream: telemetry\n"
        '      - pattern: "bakery/oven-1/status"',
        1,
    )
    edited.write_text(wide, "utf-8")
    assert main(["policy", "check", str(edited)]) == 0  # no registry on its own
    capsys.readouterr()
    assert main(["policy", "check", str(edited), "--config", config_path]) == 2
    err = capsys.readouterr().err
    assert "sensor-1" in err and "devices/baeckerei-schmidt/+/telemetry" in err


CLUSTER_CONFIG = """einblick_config: 1
instance: hall-a
data_dir: data
broker:
  mode: external
  port: 1884
recipients:
  - name: oven-maker
    display_name: Ofenbau
    url: mqtt://127.0.0.1:1
cluster:
  instances:
    - name: hall-a
      customers: [werk-a]
    - name: hall-b
      customers: [werk-b, werk-c]
"""


def test_check_with_a_cluster_config_warns_of_topics_either_side_gives_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hall-a's werk-a beside hall-b's files: a pattern less literal than werk-b's gives its
    topics up, one more literal than werk-c's takes them; both said before the file is in."""
    (tmp_path / "einblick.yaml").write_text(CLUSTER_CONFIG, encoding="utf-8")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "werk-b.yaml").write_text(customer_policy("werk-b"), encoding="utf-8")
    werk_c = customer_policy("werk-c").replace('"werk-c/press-1', '"{site}/{line}')
    (policies / "werk-c.yaml").write_text(werk_c, encoding="utf-8")
    checked = tmp_path / "werk-a.yaml"
    checked.write_text(
        customer_policy("werk-a").replace('"werk-a/press-1', '"{site}/press-1'), "utf-8"
    )
    config = str(tmp_path / "einblick.yaml")
    assert main(["policy", "check", str(checked), "--config", config]) == 0
    out, err = capsys.readouterr()
    assert f"{checked}: ok: werk-a" in out
    takes, gives = sorted(line for line in err.splitlines() if line.startswith("warning:"))
    assert "overlaps 'werk-b/press-1/telemetry' of customer 'werk-b'" in gives
    assert "recorded here as withheld" in gives
    assert "is more literal than '{site}/{line}/telemetry' of customer 'werk-c'" in takes
    # werk-b's file checked with hall-a's configuration: not "ok", not an overlap refusal --
    # hall-a would set it aside; the instance that runs werk-b has to check it.
    other = tmp_path / "werk-b.yaml"
    other.write_text(customer_policy("werk-b"), encoding="utf-8")
    assert main(["policy", "check", str(other), "--config", config]) == 2
    out, err = capsys.readouterr()
    assert f"{other}: ok" not in out and "overlaps" not in err
    assert "customer 'werk-b' is another instance's in this cluster" in err
