"""`einblick device add` for a device the customer's policy already declares: the snippet shows
the policy's topic (captures as ``<name>``), the registry adds no topics of its own, and the
printed snippets work once the integrator fills in the placeholder."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.commands.device import shown_topic
from gateway.devices.registry import Registry
from tests.gateway.harness import running_gateway
from tests.gateway.test_devices import einblick, run_snippets, wait_received

CUSTOMER = "spedition-meier"

FLEET = """einblick_policy: 1
customer: spedition-meier
name: Spedition Meier
language: en
devices:
  - id: van-7
    name: Van 7
    kind: tracker
    profile: owntracks
    topics:
      - pattern: "owntracks/{user}/van-7"
        stream: location
grants:
  - id: routing
    recipient: logistics
    purpose: Route planning
    legal_basis: contract
    devices: [van-7]
    topic: "fleet/{device}"
    fields:
      temperature: keep
"""


def test_shown_topic_names_each_capture() -> None:
    assert shown_topic("owntracks/{user}/van-7") == "owntracks/<user>/van-7"
    assert shown_topic("bakery/oven-1/telemetry") == "bakery/oven-1/telemetry"
    assert shown_topic("site/+/{device}/#") == "site/<any>/<device>/<any/…>"


async def test_declared_device_gets_the_policy_topic_and_no_registry_topics(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"fleet.yaml": FLEET}, []) as h:
        snippet = await einblick(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Van 7", "--id", "van-7"
        )
        assert "publish:   owntracks/<user>/van-7 " in snippet
        assert "-t 'owntracks/<user>/van-7'" in snippet
        assert "devices/" not in snippet
        registry = Registry(h.gateway.config.data_path / "devices.json")
        assert registry.get(CUSTOMER, "van-7").topics == ()
        # The integrator fills in the user level; both printed programs then get through the
        # ACL, which only allows the policy's topic.
        await run_snippets(snippet.replace("<user>", "jan"))
        await wait_received(h, 2)

        # An undeclared device of the same customer still gets the gateway's own namespace.
        other = await einblick(
            h, "device", "add", "--customer", CUSTOMER, "--name", "Van 8", "--id", "van-8"
        )
        assert f"publish:   devices/{CUSTOMER}/van-8/telemetry " in other
        registry.load()
        assert registry.get(CUSTOMER, "van-8").topics == (
            (f"devices/{CUSTOMER}/van-8/{{stream}}", "telemetry"),
        )

        # --topic for a declared device contradicts the policy: refused, nothing registered.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "device", "add", "--customer", CUSTOMER,
            "--name", "Van 7b", "--id", "van-7", "--topic", "elsewhere/van-7",
            "--config", str(h.directory / "einblick.yaml"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode != 0 and out == b""
        assert b"declared in its policy" in err and b"Traceback" not in err
        registry.load()
        assert registry.get(CUSTOMER, "van-7").topics == ()
