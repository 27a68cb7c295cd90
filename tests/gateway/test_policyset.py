"""The policy files as the running gateway holds them (gateway/messages/policyset.py), on real
files: a broken edit keeps the last good version, a file broken from the start still says whose
messages are whose but claims no one else's topics, shapes are remembered across restarts,
registered devices join their customer's policy, and another instance's customer is left alone."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from gateway.devices.registry import RegisteredDevice
from gateway.messages.contested import Claim, Contested, claims_of
from gateway.messages.policy_shape import Shape
from gateway.messages.policyset import PolicySet
from policies.topics import TopicPattern
from tests.faults.cluster_site import customer_policy
from tests.gateway.test_end_to_end import BAKERY
from tests.gateway.test_report import POLICY as MUELLER

RECIPIENTS = {"oven-maker": "Ofenbau", "energy-provider": "Stadtwerke"}
BROKEN = MUELLER.replace("legal_basis: consent", "legal_basis: because")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    # A distinct mtime for every write, even within the filesystem's clock tick.
    stamp = path.stat().st_mtime_ns + 1_000_000_000 * (len(list(directory.iterdir())) + 1)
    os.utime(path, ns=(stamp, stamp))
    return path


def policies(tmp_path: Path, *, registered: list[RegisteredDevice] | None = None) -> PolicySet:
    directory = tmp_path / "policies"
    directory.mkdir(parents=True, exist_ok=True)
    return PolicySet(
        directory,
        RECIPIENTS,
        lambda: registered or [],
        shapes_path=tmp_path / "policy-shapes.json",
    )


def test_a_broken_edit_keeps_the_last_good_version_running(tmp_path: Path) -> None:
    held = policies(tmp_path)
    path = write(held.directory, "mueller.yaml", MUELLER)
    [policy] = held.load_all()
    entry = held.files[path]
    assert (entry.customer, entry.version, entry.error) == ("mueller-soehne", None, None)
    held.accepted(path, policy.version)  # the engine runs it (PolicyAdmission)
    assert entry.version == policy.version
    assert held.changed() == []
    write(held.directory, "mueller.yaml", BROKEN)
    assert held.changed() == [path]
    assert held.load(path) is None
    assert entry.version == policy.version  # the last good version still runs
    assert entry.error is not None and "mueller.yaml:" in entry.error
    assert held.errors() == [entry.error]
    assert held.changed() == []  # a broken file is not read again until it changes


def test_a_file_broken_from_the_start_attributes_its_own_topics_only(tmp_path: Path) -> None:
    held = policies(tmp_path)
    write(held.directory, "bakery.yaml", BAKERY)
    grabbing = BROKEN.replace('"locks/door"', '"#"').replace(
        '"meters/meter-1"', '"bakery/oven-1/telemetry"'
    )
    grabbing = grabbing.replace(
        "    stream: events", "    stream: events\n      - pattern: locks/+"
    )
    path = write(held.directory, "mueller.yaml", grabbing)
    [running] = held.load_all()
    assert running.customer == "baeckerei-schmidt"
    entry = held.files[path]
    assert entry.version is None and entry.shape is not None and not entry.shape.loaded
    # '#' would reach every customer; the bakery's topic is the bakery's; locks/+ is free (and
    # without a stream: the model's default).
    assert held.claimable(entry) == [("locks/+", "door", "telemetry")]

    # Alone in its directory, '#' is still refused: it would reach customers yet to come.
    alone = policies(tmp_path / "alone")
    alone_path = write(alone.directory, "mueller.yaml", grabbing)
    alone.load_all()
    assert [p for p, _, _ in alone.claimable(alone.files[alone_path])] == [
        "bakery/oven-1/telemetry",
        "locks/+",
    ]

    def is_running(customer: str) -> bool:
        return customer == "baeckerei-schmidt"

    assert held.not_loaded("locks/back", is_running) == ("mueller-soehne", "door", "telemetry")
    assert held.not_loaded("bakery/oven-1/telemetry", is_running) is None
    assert held.not_loaded_topics(is_running) == {("mueller-soehne", "door"): ["locks/+"]}


def test_a_shape_is_remembered_for_a_restart_with_a_broken_file(tmp_path: Path) -> None:
    first = policies(tmp_path)
    path = write(first.directory, "mueller.yaml", MUELLER)
    [loaded] = first.load_all()
    assert not (tmp_path / "policy-shapes.json").exists()  # loaded, not yet run
    first.accepted(path, loaded.version)  # the engine runs it: now its shape is trusted
    saved = orjson.loads((tmp_path / "policy-shapes.json").read_bytes())
    assert saved["mueller.yaml"]["customer"] == "mueller-soehne"
    assert (tmp_path / "policy-shapes.json").stat().st_mode & 0o777 == 0o600
    write(first.directory, "mueller.yaml", "customer: [unreadable")
    restarted = policies(tmp_path)
    assert restarted.load_all() == []
    shape = restarted.files[path].shape
    # Remembered from a load, so its checks passed then: every topic counts.
    assert shape == Shape.of(
        "mueller-soehne",
        [("meters/meter-1", "meter-1", "telemetry"), ("locks/door", "door", "events")],
    )
    assert shape is not None and shape.loaded
    assert restarted.not_loaded("meters/meter-1", lambda _c: False) == (
        "mueller-soehne",
        "meter-1",
        "telemetry",
    )


def test_the_shapes_file_keeps_its_format_and_a_damaged_entry_costs_only_itself(
    tmp_path: Path,
) -> None:
    first = policies(tmp_path)
    path = write(first.directory, "mueller.yaml", MUELLER)
    [loaded] = first.load_all()
    first.accepted(path, loaded.version)
    shapes = tmp_path / "policy-shapes.json"
    # The format written before: file name -> customer and [pattern, device, stream] lists.
    assert orjson.loads(shapes.read_bytes()) == {
        "mueller.yaml": {
            "customer": "mueller-soehne",
            "topics": [
                ["meters/meter-1", "meter-1", "telemetry"],
                ["locks/door", "door", "events"],
            ],
        }
    }
    saved = orjson.loads(shapes.read_bytes())
    saved["other.yaml"] = {"customer": 7, "topics": [["x/#", "x", "telemetry"]]}
    saved["third.yaml"] = {"customer": "c", "topics": [["x/#", "x"]]}
    shapes.write_bytes(orjson.dumps(saved))
    for name in ("mueller.yaml", "other.yaml", "third.yaml"):
        write(first.directory, name, "customer: [unreadable")
    restarted = policies(tmp_path)
    assert restarted.load_all() == []
    by_name = {p.name: entry.shape for p, entry in restarted.files.items()}
    assert by_name["mueller.yaml"] is not None
    assert by_name["mueller.yaml"].customer == "mueller-soehne"
    # Neither a customer that is no name nor a topic missing its stream attributes anything.
    assert by_name["other.yaml"] is None and by_name["third.yaml"] is None


def test_registered_devices_join_their_customer_s_policy(tmp_path: Path) -> None:
    sensor = RegisteredDevice(
        customer="mueller-soehne",
        device="sensor-9",
        name="Sensor 9",
        kind="sensor",
        username="mueller-soehne.sensor-9",
        password_hash=None,
        topics=(("devices/mueller-soehne/sensor-9/#", "telemetry"),),
    )
    other = RegisteredDevice(
        customer="baeckerei-schmidt",
        device="x",
        name="X",
        kind="sensor",
        username="baeckerei-schmidt.x",
        password_hash=None,
        topics=(("devices/baeckerei-schmidt/x/#", "telemetry"),),
    )
    held = policies(tmp_path, registered=[sensor, other])
    write(held.directory, "mueller.yaml", MUELLER)
    [policy] = held.load_all()
    assert [d.id for d in policy.devices] == ["meter-1", "door", "sensor-9"]


def test_another_instance_s_customer_is_left_to_it(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    held = PolicySet(
        directory, RECIPIENTS, list, owns=lambda customer: customer != "mueller-soehne"
    )
    path = write(directory, "mueller.yaml", MUELLER)
    write(directory, "bakery.yaml", BAKERY)
    assert [p.customer for p in held.load_all()] == ["baeckerei-schmidt"]
    assert path not in held.files and path in held.elsewhere
    assert held.changed() == []  # not read again while unchanged
    write(directory, "mueller.yaml", BAKERY.replace("baeckerei-schmidt", "neu-kunde"))
    assert held.changed() == [path]  # changed: its customer may now be ours


def _press(customer: str, pattern: str) -> str:
    return customer_policy(customer).replace(f'"{customer}/press-1/telemetry"', f'"{pattern}"')


def _takes(held: PolicySet, ours: list[Claim], topic: str) -> bool:
    return Contested(ours, held.theirs()).disowns(topic)


def test_what_a_set_aside_file_claims_follows_what_its_owner_runs(tmp_path: Path) -> None:
    """hall-a runs werk-a's ``{site}/press-1/telemetry``; werk-b's file is set aside. Its claims
    are its last version that compiled through a broken edit (its owner runs that version on),
    every valid pattern of a file that never compiled here (one compiles with the recipients
    it names, as its owner has them), and what it claimed before once it cannot be read or is gone (its owner attributes by the
    file's shape still)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    hall_a = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns="werk-a".__eq__)
    write(directory, "werk-a.yaml", _press("werk-a", "{site}/press-1/telemetry"))
    b_file = write(directory, "werk-b.yaml", customer_policy("werk-b"))
    [werk_a] = hall_a.load_all()
    ours = claims_of([werk_a])
    assert _takes(hall_a, ours, "werk-b/press-1/telemetry")
    assert not _takes(hall_a, ours, "werk-a/press-1/telemetry")  # no claim of theirs
    renamed = customer_policy("werk-b").replace("press-1/telemetry", "press1/telemetry")
    write(directory, "werk-b.yaml", renamed.replace("contract", "because"))  # broken edit
    assert hall_a.load(b_file) is None
    assert _takes(hall_a, ours, "werk-b/press-1/telemetry")  # the version that runs there
    assert not _takes(hall_a, ours, "werk-b/press1/telemetry")
    write(directory, "werk-b.yaml", "customer: [werk-b\n")  # not even YAML
    assert hall_a.load(b_file) is None and b_file in hall_a.elsewhere
    assert _takes(hall_a, ours, "werk-b/press-1/telemetry")
    b_file.unlink()
    hall_a.removed()
    assert _takes(hall_a, ours, "werk-b/press-1/telemetry")
    # Renamed, with another topic: the customer's new file replaces what the gone one claimed.
    renamed_file = write(
        directory,
        "werk-b-2026.yaml",
        customer_policy("werk-b").replace("press-1/telemetry", "press-9/telemetry"),
    )
    hall_a.load(renamed_file)
    assert not _takes(hall_a, ours, "werk-b/press-1/telemetry")
    assert [c.pattern.pattern for c in hall_a.theirs()] == ["werk-b/press-9/telemetry"]
    # A file that never compiled (a wrong legal basis): every valid pattern it reads as, a
    # first-level wildcard too; an invalid one claims nothing.
    other = customer_policy("werk-c").replace("contract", "because")
    two = '"+/+/x"\n        stream: telemetry\n      - pattern: "bad/#/x"'
    write(directory, "werk-c.yaml", other.replace('"werk-c/press-1/telemetry"', two))
    hall_a.load(directory / "werk-c.yaml")
    werk_c = [c.pattern.pattern for c in hall_a.theirs() if c.customer == "werk-c"]
    assert werk_c == ["+/+/x"]
    mine = [*claims_of([werk_a]), Claim("werk-a", TopicPattern("+/+/+"), "werk-a.yaml")]
    assert _takes(hall_a, mine, "plant/press-1/x")  # werk-c's "+/+/x" outranks "+/+/+"


def test_a_new_file_copied_in_before_the_old_one_goes_replaces_its_claims(tmp_path: Path) -> None:
    """werk-b's fixed file copied in first, the old one deleted after: once the old one is gone
    the new one alone claims for werk-b (before, the old claims stayed until a restart)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    hall_a = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns="werk-a".__eq__)
    old = write(directory, "werk-b.yaml", _press("werk-b", "{x}/press-1/telemetry"))
    hall_a.load_all()
    fixed = write(directory, "werk-b-fixed.yaml", customer_policy("werk-b"))
    hall_a.load(fixed)
    assert sorted(c.pattern.pattern for c in hall_a.theirs()) == [
        "werk-b/press-1/telemetry",
        "{x}/press-1/telemetry",
    ]
    old.unlink()
    hall_a.removed()
    assert [c.pattern.pattern for c in hall_a.theirs()] == ["werk-b/press-1/telemetry"]


def test_an_edit_naming_another_instances_customer_leaves_the_running_version(
    tmp_path: Path,
) -> None:
    """werk-a's running file edited to say ``customer: werk-b`` (another instance's): refused
    with words, the file still werk-a's, its last good version running, and nothing claimed
    for werk-b (before, the file was set aside with werk-a still running and unstoppable)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    hall_a = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns="werk-a".__eq__)
    path = write(directory, "werk-a.yaml", customer_policy("werk-a"))
    [policy] = hall_a.load_all()
    hall_a.accepted(path, policy.version)
    write(
        directory,
        "werk-a.yaml",
        customer_policy("werk-a").replace("customer: werk-a", "customer: werk-b"),
    )
    assert hall_a.load(path) is None
    entry = hall_a.files[path]
    assert entry.version == policy.version and entry.customer == "werk-a"
    assert entry.error is not None and "names customer 'werk-b'" in entry.error
    assert path not in hall_a.elsewhere
    # werk-b's instance may run the file as it reads now: its topics count as werk-b's here.
    assert [(c.customer, c.pattern.pattern) for c in hall_a.theirs()] == [
        ("werk-b", "werk-a/press-1/telemetry")
    ]


def test_another_instances_file_edited_to_name_a_third_customer_keeps_its_claims(
    tmp_path: Path,
) -> None:
    """werk-b's file overwritten with werk-c's (a third instance's customer): werk-b's instance
    refuses the edit and runs werk-b's last good version on, so its topics stay claimed here,
    beside werk-c's (before, werk-b's vanished and hall-a took werk-b's topic again)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    hall_a = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns="werk-a".__eq__)
    path = write(directory, "werk-b.yaml", customer_policy("werk-b"))
    hall_a.load_all()
    write(directory, "werk-b.yaml", customer_policy("werk-c"))
    hall_a.load(path)
    assert sorted((c.customer, c.pattern.pattern) for c in hall_a.theirs()) == [
        ("werk-b", "werk-b/press-1/telemetry"),
        ("werk-c", "werk-c/press-1/telemetry"),
    ]


def test_a_file_whose_customer_is_handed_away_is_set_aside_whatever_its_edit_says(
    tmp_path: Path,
) -> None:
    """The refusal above holds only while the running customer is this instance's: once werk-a
    is handed to another instance, the handover's reload sets its file aside (before, the edit
    naming werk-b was refused again and the file stayed as if werk-a still ran here)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    ours = {"werk-a"}
    hall_a = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns=ours.__contains__)
    path = write(directory, "werk-a.yaml", customer_policy("werk-a"))
    [policy] = hall_a.load_all()
    hall_a.accepted(path, policy.version)
    edited = customer_policy("werk-a").replace("customer: werk-a", "customer: werk-b")
    write(directory, "werk-a.yaml", edited)
    assert hall_a.load(path) is None and path in hall_a.files  # refused: werk-a runs here
    ours.clear()  # werk-a handed over (gateway/operations/handover.py _stop_running)
    assert hall_a.load(path) is None
    assert path not in hall_a.files and path in hall_a.elsewhere
