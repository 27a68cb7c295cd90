"""The device side's access rules as the running gateway keeps them: broker users, the ACL from
the running policies' topics, devices left out, what a registry change does to one device."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from gateway.config import Config
from gateway.devices import access as access_module
from gateway.devices.access import DeviceAccess, broker_users, read_secret
from gateway.devices.refusals import WarningBudget
from gateway.errors import ConfigError
from gateway.messages.pseudonyms import Keyring
from policies.compiler import compile_policy
from policies.engine import Engine
from policies.loader import load_policy
from tests.gateway.edge import edge_config
from tests.gateway.test_end_to_end import BAKERY

CUSTOMER = "baeckerei-schmidt"


def _engine(config: Config) -> Engine:
    document = load_policy(config.policies_path / "bakery.yaml")
    return Engine([compile_policy(document, recipients=config.recipient_names())], Keyring())


def test_the_gateways_own_users_are_its_session_and_two_helpers(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    user = config.broker.gateway_username
    assert broker_users(config) == (user, f"{user}-erasure", f"{user}-retained")


def test_an_unreadable_secret_names_the_file_and_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the gateway's broker password"):
        read_secret(tmp_path / "absent.secret", "the gateway's broker password")


def test_acl_gives_a_device_the_running_policys_topics_else_its_registered_ones(
    tmp_path: Path,
) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    declared: dict[tuple[str, str], list[str]] = {}
    access = DeviceAccess(lambda: config, lambda: declared)
    access.registry.add(CUSTOMER, "oven-1", name="Backofen 1", kind="oven")
    own = f"devices/{CUSTOMER}/oven-2/telemetry"
    access.registry.add(CUSTOMER, "oven-2", name="Backofen 2", kind="oven", topics=((own, "t"),))
    rules = {r.username: r for r in access.acl_rules()}
    gateway_user = config.broker.gateway_username
    assert set(rules) >= set(broker_users(config))
    assert rules[gateway_user].readwrite == ("#",)
    assert rules[f"{CUSTOMER}.oven-2"].write == (own,)
    declared[(CUSTOMER, "oven-1")] = ["bakery/oven-1/telemetry"]
    rules = {r.username: r for r in access.acl_rules()}
    assert rules[f"{CUSTOMER}.oven-1"].write == ("bakery/oven-1/telemetry",)
    assert rules[f"{CUSTOMER}.oven-1"].deny == ()
    # A running pattern with a wildcard first level: every other customer's namespace (of
    # the registry and the running policies) is denied to it.
    access.registry.add("mueller", "meter", name="Zähler", kind="meter")
    declared[("sued", "probe")] = ["sued/probe"]
    declared[(CUSTOMER, "oven-1")] = ["{site}/oven-1/telemetry"]
    rules = {r.username: r for r in access.acl_rules()}
    assert rules[f"{CUSTOMER}.oven-1"].deny == ("devices/mueller/#", "devices/sued/#")


def test_a_device_breaking_the_topic_rules_is_left_out_and_named(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    access = DeviceAccess(lambda: config, dict)
    access.registry.add(CUSTOMER, "oven-1", name="Backofen 1", kind="oven")
    # Registered by hand with a topic another device of the policy owns.
    access.registry.add(CUSTOMER, "oven-9", name="Backofen 9", kind="oven")
    access.registry.save()
    devices = orjson.loads(access.registry.path.read_bytes())
    devices["devices"][1]["topics"] = [["bakery/oven-1/telemetry", "telemetry"]]
    access.registry.path.write_bytes(orjson.dumps(devices))
    access.registry.load()
    access.check()
    assert list(access.problems) == [(CUSTOMER, "oven-9")]
    assert "not admitted to the broker" in access.problems[(CUSTOMER, "oven-9")]
    assert [d.device for d in access.admitted()] == ["oven-1"]
    assert f"{CUSTOMER}.oven-9" not in {r.username for r in access.acl_rules()}


def test_a_registry_change_names_the_customers_it_touched(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    access = DeviceAccess(lambda: config, dict)
    told: list[set[str]] = []
    access.on_registry_change = told.append
    other = DeviceAccess(lambda: config, dict)  # what `einblick device add` does meanwhile
    other.registry.add(CUSTOMER, "oven-2", name="Backofen 2", kind="oven")
    other.registry.save()
    assert access.reload_devices() == 1
    assert told == [{CUSTOMER}]
    assert access.reload_devices() == 1
    assert told[-1] == set()  # nothing changed the second time


def test_the_effect_of_a_device_change_says_what_the_gateway_does_now(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    access = DeviceAccess(lambda: config, dict)
    engine = _engine(config)
    assert access.effect(engine, CUSTOMER, "oven-1", None).state == "decided"  # declared only
    assert access.effect(engine, CUSTOMER, "oven-7", None).state == "removed"
    access.registry.add(CUSTOMER, "oven-7", name="Backofen 7", kind="oven")
    effect = access.effect(engine, CUSTOMER, "oven-7", None)
    assert (effect.state, effect.policy) == (
        "not_in_policy",
        str(config.policies_path / "bakery.yaml"),
    )
    access.registry.add("werk-nord", "press-1", name="Presse", kind="press")
    missing = access.effect(engine, "werk-nord", "press-1", "werk.yaml:3: bad key")
    assert (missing.state, missing.error) == ("policy_not_running", "werk.yaml:3: bad key")


FAILED_LOGIN = [
    "1700000000: New connection from 192.168.1.44:40000 on port 1883.",
    "1700000000: Client <unknown> disconnected, not authorised.",
]
REFUSED_LINE = "device broker refused address 192.168.1.44: bad_credentials"


def _budgeted_access(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_window: int, window: float
) -> DeviceAccess:
    monkeypatch.setattr(
        access_module, "WarningBudget", lambda: WarningBudget(per_window, window=window)
    )
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    return DeviceAccess(lambda: config, dict)


async def _wait_for_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    async with asyncio.timeout(10):  # a window's end writes its summary from a loop timer
        while len(caplog.records) < count:
            await asyncio.sleep(0.02)
    return [r.getMessage() for r in caplog.records]


async def test_a_flood_of_refusals_writes_a_bounded_number_of_lines_and_a_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thousand failed logins are all counted, but the gateway's own log gets the window's
    share of lines for each kind, and one line that sums up the rest as the window ends (here:
    the gateway's stop; a window long enough that no machine is slow enough to end it first)."""
    access = _budgeted_access(tmp_path, monkeypatch, 3, 30.0)
    caplog.set_level(logging.WARNING, logger="gateway.devices.access")
    access._broker_log(FAILED_LOGIN * 1000)
    access._broker_log(["1700000000: OpenSSL Error[0]: error:0A000086:SSL routines::x"])
    assert access.refusals.totals["bad_credentials"] == 1000
    assert [r.getMessage() for r in caplog.records] == [
        *[REFUSED_LINE] * 3,
        "device broker refused address 192.168.1.44: tls_refused (x)",  # its own share
    ]
    access.flush_refusal_log()
    assert caplog.records[4].getMessage() == (
        "997 more refusals at the device broker within 30 s not written here "
        "(bad_credentials 997); `einblick status` counts every one"
    )
    access._broker_log(FAILED_LOGIN)  # a new window: written at once
    assert [r.getMessage() for r in caplog.records][5:] == [REFUSED_LINE]


async def test_a_window_closed_by_a_late_refusal_still_sums_up_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = _budgeted_access(tmp_path, monkeypatch, 1, 0.2)
    caplog.set_level(logging.WARNING, logger="gateway.devices.access")
    access._broker_log(FAILED_LOGIN * 2)  # one written, one held: the timer is set
    # The loop's clock moved to the window's end, and a refusal handled before the loop turns
    # again: it comes before the timer does.
    loop = asyncio.get_running_loop()
    clock, shift = loop.time, access._warnings.window_end - loop.time()
    monkeypatch.setattr(loop, "time", lambda: clock() + shift)
    access._broker_log(FAILED_LOGIN * 3)  # sums up the old window, opens one holding two
    assert [r.getMessage() for r in caplog.records] == [
        REFUSED_LINE,
        "1 more refusal at the device broker within 0.2 s not written here "
        "(bad_credentials 1); `einblick status` counts every one",
        REFUSED_LINE,
    ]
    lines = await _wait_for_lines(caplog, 4)  # the stale timer set one for the new window
    assert lines[3].startswith("2 more refusals at the device broker")
    access._broker_log(FAILED_LOGIN * 2)
    access.flush_refusal_log()  # the gateway's stop: what is held back is written now
    assert [r.getMessage() for r in caplog.records][4:] == [
        REFUSED_LINE,
        "1 more refusal at the device broker within 0.2 s not written here "
        "(bad_credentials 1); `einblick status` counts every one",
    ]
