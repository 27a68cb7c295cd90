"""The portal's security, against a real gateway, real Mosquitto and the portal as its own
process over HTTPS: only the login without a session, CSRF on every POST, brute force locked
out, another customer's ids answered 404, nothing of another customer anywhere, TLS by default.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.log.reader import LogReader
from gateway.operations.control import request
from gateway.operations.portal.server import open_portal
from tests.portal.site import CUSTOMER, MARKERS, OTHER, PASSWORD, PortalSite, cli, portal_site

# Every route a customer's browser can reach (path, method); ids filled per test.
GETS = [
    "/",
    "/log",
    "/log?device=room-1",
    "/entry/1",
    "/grants",
    "/receipts/1",
    "/receipts/1?record=1",
    "/report",
    "/report.json",
    "/download",
    "/bundle",
    "/checkpoint",
    "/key",
    "/erasure",
    "/account",
    "/live",
]
POSTS = [
    "/logout",
    "/grants/demand-heating/withdraw",
    "/grants/grid-statistics/object",
    "/erasure",
    "/account/totp",
    "/account/totp/confirm",
]


async def test_without_a_session_only_the_login_answers(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        client = site.client()
        for path in GETS:
            async with client.get(site.url + path, allow_redirects=False) as response:
                assert response.status == 303, path
                assert response.headers["Location"] == "/login", path
        for path in POSTS:
            async with client.post(
                site.url + path, data={"csrf": "x"}, allow_redirects=False
            ) as response:
                assert response.status == 403, path
        async with client.get(site.url + "/login") as response:
            page = await response.text()
            assert response.status == 200
            assert 'name="password"' in page
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def _page(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with client.get(url, allow_redirects=False) as response:
        body = await response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        return response.status, body.decode("utf-8", "replace"), headers


async def _entries(site: PortalSite, customer: str) -> list[int]:
    reader = await LogReader.open(site.harness.gateway.config.database_path, customer=customer)
    try:
        return [r.seq for r in await reader.page(limit=1000)]
    finally:
        await reader.close()


async def _both_customers_sent(site: PortalSite) -> None:
    await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
    await site.publish(OTHER, "stall-geheim-7", "farm/stall-geheim-7", 1)
    await site.harness.wait_committed(2)
    # The other customer withdraws through the gateway: a receipt of theirs exists too.
    await request(
        site.harness.gateway.config.control_socket,
        "withdraw",
        customer=OTHER,
        grant="geheim-grant",
        by="GEHEIM Person",
    )


async def test_another_customers_ids_are_not_found(tmp_path: Path) -> None:
    """The IDOR sweep: every URL that takes an id, given the other customer's, answers 404 (or
    shows nothing of theirs), and their consent stays as it was."""
    async with portal_site(tmp_path) as site:
        await _both_customers_sent(site)
        client = await site.account()
        theirs = await _entries(site, OTHER)
        mine = await _entries(site, CUSTOMER)
        assert theirs and mine and not set(theirs) & set(mine)
        for seq in theirs:
            for path in (
                f"/entry/{seq}",
                f"/receipts/{seq}",
                f"/receipts/{seq}?download=1",
                f"/receipts/{seq}?record=1",
            ):
                status, body, _ = await _page(client, site.url + path)
                assert status == 404, (path, status)
                assert not any(m in body for m in MARKERS), path
        # Their device as a filter: no rows; their grant: not found, and not withdrawn twice.
        status, body, _ = await _page(client, site.url + "/log?device=stall-geheim-7")
        assert status == 200 and 'data-seq="' not in body
        token = await site.csrf(client, "/grants")
        async with client.post(
            site.url + "/grants/geheim-grant/withdraw",
            data={"csrf": token, "by": "intruder"},
            allow_redirects=False,
        ) as response:
            assert response.status == 404
        for action in ("object", "restrict", "give", "lift"):
            async with client.post(
                site.url + f"/grants/geheim-grant/{action}",
                data={"csrf": token, "by": "intruder"},
                allow_redirects=False,
            ) as response:
                assert response.status == 404, action
        # The checkpoint to keep is this customer's tree's, never the other's.
        status, body, _ = await _page(client, site.url + "/checkpoint")
        assert status == 200 and body.splitlines()[0].endswith(CUSTOMER), body
        assert not any(m in body for m in MARKERS)
        # Their entries through the live stream: after=0 with their device as the filter.
        async with client.get(
            site.url + "/live?after=0&device=stall-geheim-7", timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            with contextlib.suppress(TimeoutError):
                chunk = await response.content.read(4096)
                assert b"event: entry" not in chunk
        # My own entry is found (the 404s above are not a broken page).
        status, body, _ = await _page(client, site.url + f"/entry/{mine[0]}")
        assert status == 200 and "room-1" in body
        events = await _consent_events(site, OTHER)
        assert events == [("geheim-grant", "withdraw", "GEHEIM Person")]


async def _consent_events(site: PortalSite, customer: str) -> list[tuple[str, str, str]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{site.harness.gateway.config.database_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT grant_id, action, by FROM consent_events WHERE customer = ? ORDER BY rowid",
            (customer,),
        ).fetchall()
    finally:
        conn.close()
    return [(str(g), str(a), str(b)) for g, a, b in rows]


async def test_nothing_of_another_customer_in_any_page_header_or_log_line(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        await _both_customers_sent(site)
        client = await site.account()
        mine = await _entries(site, CUSTOMER)
        paths = [p for p in GETS if p != "/live"] + [f"/entry/{s}" for s in mine]
        for path in paths:
            status, body, headers = await _page(client, site.url + path)
            assert status in (200, 303, 404), (path, status)
            for marker in MARKERS:
                assert marker not in body, f"{marker!r} in {path}"
                assert marker not in headers, f"{marker!r} in the headers of {path}"
        # The pages did show this customer's own data (the sweep looked at real pages).
        _, report, _ = await _page(client, site.url + "/report.json")
        assert '"customer": "berg-partner"' in report
        _, bundle, _ = await _page(client, site.url + "/bundle")
        assert '"customer":"berg-partner"' in bundle
        # The portal's own log: no marker, no password, no session token.
        cookies = [c.value for c in client.cookie_jar]
        log = site.portal_log()
        assert "logged in" in log
        for secret in (PASSWORD, *cookies, *MARKERS):
            assert secret not in log, f"{secret!r} in the portal's log"


async def test_a_post_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        client = await site.account()
        for form in ({"by": "Miriam"}, {"by": "Miriam", "csrf": "forged"}):
            async with client.post(
                site.url + "/grants/demand-heating/withdraw", data=form, allow_redirects=False
            ) as response:
                assert response.status == 403
            async with client.post(
                site.url + "/erasure", data={**form, "confirm": "yes"}, allow_redirects=False
            ) as response:
                assert response.status == 403
        assert await _consent_events(site, CUSTOMER) == []
        assert site.harness.gateway.engine.policy(CUSTOMER) is not None
        status, body, _ = await _page(client, site.url + "/erasure")
        assert status == 200 and "erasure-requests" not in body
        assert "without a valid CSRF token" in site.portal_log()
        # With the token, the same withdrawal goes through: the refusals above were the token's.
        token = await site.csrf(client, "/grants")
        async with client.post(
            site.url + "/grants/demand-heating/withdraw",
            data={"csrf": token, "by": "Miriam"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        assert [e[:2] for e in await _consent_events(site, CUSTOMER)] == [
            ("demand-heating", "withdraw")
        ]


async def test_password_guessing_is_locked_out(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        owner = await site.account()
        await owner.close()
        guesser = site.client()
        for attempt in range(5):
            response = await site.login(guesser, "miriam", f"wrong guess {attempt}")
            assert response.status == 403
        # Locked: even the right password is refused now, and says so.
        response = await site.login(guesser, "miriam", PASSWORD)
        assert response.status == 403
        status, _, _ = await _page(guesser, site.url + "/log")
        assert status == 303
        log = site.portal_log()
        assert "locked after repeated failures" in log
        assert "wrong guess" not in log and PASSWORD not in log


async def test_revoking_ends_the_session_at_once(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        client = await site.account()
        status, _, _ = await _page(client, site.url + "/log")
        assert status == 200
        code, out, _ = await cli(
            "customer", "revoke", "--config", str(site.config_path), "--customer", CUSTOMER
        )
        assert code == 0 and "revoked 1 login(s)" in out
        status, _, _ = await _page(client, site.url + "/log")
        assert status == 303
        response = await site.login(client, "miriam", PASSWORD)
        assert response.status == 403


async def test_tls_is_on_by_default_with_the_boxs_certificate(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        assert site.url.startswith("https://")
        client = site.client()  # trusts only the box's CA: the handshake checks the chain
        cookie = await _set_cookie(client, site.url + "/login")
        assert cookie.startswith("__Host-einblick-csrf=")
        for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
            assert flag in cookie, flag
        status, _, headers = await _page(client, site.url + "/login")
        assert status == 200 and "Strict-Transport-Security" in headers
        plain = site.url.replace("https://", "http://")
        async with aiohttp.ClientSession() as insecure:
            with pytest.raises(aiohttp.ClientError):
                async with insecure.get(plain + "/login") as response:
                    await response.read()


async def _set_cookie(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as response:
        return response.headers.get("Set-Cookie", "")


def test_plain_http_is_refused_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "einblick.yaml"
    config.write_text(
        "einblick_config: 1\ninstance: box\nportal:\n  host: 0.0.0.0\n  plain_http: true\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="plain_http is allowed only on loopback"):
        load_config(config)
    config.write_text(
        "einblick_config: 1\ninstance: box\nportal:\n  host: 127.0.0.1\n  plain_http: true\n",
        encoding="utf-8",
    )
    assert load_config(config).portal is not None


async def test_the_portals_log_handle_cannot_write(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site:
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        await site.harness.wait_committed(1)
        portal = open_portal(load_config(site.config_path))
        try:
            reader = await portal.reader(CUSTOMER)
            for statement in (
                "DELETE FROM entries",
                "UPDATE entries SET outcome = 0",
                "INSERT INTO meta (key, value) VALUES ('x', 'y')",
            ):
                with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
                    await reader.run(reader.sync._conn.execute, statement)
            # One message, one entry per recipient (two grants, two recipients), all still there.
            assert len(await reader.page()) == 2
        finally:
            await portal.close()
