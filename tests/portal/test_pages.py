"""The customer's pages over HTTP against the real portal: filter and find, a withheld entry's
reason, the language from the browser and from the switch, the report as HTML and JSON, and
two-factor login."""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson

from gateway.operations.control import request
from gateway.operations.portal.credentials import totp_code
from tests.portal.site import CUSTOMER, PASSWORD, portal_site


async def test_filter_find_reason_language_report_and_two_factor(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        await site.harness.wait_committed(1)
        await request(
            site.harness.gateway.config.control_socket,
            "withdraw",
            customer=CUSTOMER,
            grant="demand-heating",
            by="Miriam",
        )
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 2)
        await site.harness.wait_committed(2)
        client = await site.account()
        url = site.url
        async with client.get(url + "/log?lang=en") as response:  # English from here on
            assert response.status == 200

        # Filter hides, find marks.
        async with client.get(url + "/log?outcome=withheld") as response:
            page = await response.text()
        rows = re.findall(r'<tr class="(\w+)[^"]*" data-seq="(\d+)"', page)
        assert rows and {kind for kind, _ in rows} == {"withheld"}
        withheld = rows[0][1]
        async with client.get(url + "/log?find=withdrawn") as response:
            page = await response.text()
        assert ' hit" data-seq=' in page
        assert re.search(r"find: withdrawn \(\d+\)", page)

        # A withheld entry's page says why, in the customer's words.
        async with client.get(url + f"/entry/{withheld}") as response:
            page = await response.text()
        assert "the grant was withdrawn" in page

        # Language: the browser's first, then the switch, kept in a cookie (a second session).
        other = site.client()
        assert (await site.login(other, "miriam", PASSWORD)).status == 303
        german = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
        async with other.get(url + "/log", headers=german) as response:
            assert "Was mit Ihren Daten geschah" in await response.text()
        async with other.get(url + "/log?lang=en", headers=german) as response:
            assert "What happened to your data" in await response.text()
        async with other.get(url + "/grants", headers=german) as response:
            assert "Who gets what, and why" in await response.text()

        # The access report: HTML with the verification, JSON for Art. 20.
        async with client.get(url + "/report") as response:
            page = await response.text()
        assert response.status == 200 and "room-1" in page
        async with client.get(url + "/report.json") as response:
            data = orjson.loads(await response.read())
            assert "attachment" in response.headers["Content-Disposition"]
        assert data["customer"] == CUSTOMER and data["verification"]["ok"] is True

        # Two-factor: turned on with a code from the secret, then asked at every login.
        token = await site.csrf(client, "/account")
        async with client.post(url + "/account/totp", data={"csrf": token}) as response:
            page = await response.text()
        raw = re.search(r'name="raw" value="([0-9a-f]{40})"', page)
        assert raw is not None
        secret = bytes.fromhex(raw.group(1))
        form = {"csrf": token, "raw": raw.group(1), "code": totp_code(secret, time.time())}
        async with client.post(url + "/account/totp/confirm", data=form) as response:
            assert "Two-factor login is on." in await response.text()
        fresh = site.client()
        assert (await site.login(fresh, "miriam", PASSWORD)).status == 403
        ok = await site.login(fresh, "miriam", PASSWORD, totp_code(secret, time.time()))
        assert ok.status == 303
