"""Login, invitation, logout and two-factor set-up over HTTP, with the portal served in this
process: an invitation works once, repeated failures lock the account (the right password too)
and say so in the log, logging out ends the session, TOTP once confirmed is asked."""

from __future__ import annotations

import html
import logging
import re
import time
from pathlib import Path

import pytest

from gateway.operations.portal.credentials import totp_code
from gateway.operations.portal.texts import t
from tests.portal.box import PASSWORD, portal_box


async def test_an_invitation_makes_one_account_once(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        store = box.store()
        token, _ = store.invite("baeckerei-schmidt", "Bernd", 3600)
        client = box.client()
        path = f"/invite/{token}"
        form = {"csrf": await box.csrf(client, path), "login": "bernd"}
        mismatch = {**form, "password": PASSWORD, "password2": PASSWORD + "!"}
        async with client.post(box.url + path, data=mismatch) as response:
            assert response.status == 400
        good = {**form, "password": PASSWORD, "password2": PASSWORD}
        async with client.post(box.url + path, data=good, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login?welcome=1"
        async with client.get(box.url + path) as response:
            assert response.status == 404  # used
        assert await box.login(client, "bernd") == 303
        assert [a.login for a in store.accounts("baeckerei-schmidt")] == ["anna", "bernd"]


async def test_repeated_failures_lock_the_account_and_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "einblick.portal")
    async with portal_box(tmp_path, "  lock_after_failures: 3\n") as box:
        client = box.client()
        for _ in range(3):
            token = await box.csrf(client, "/login")
            form = {"csrf": token, "login": "anna", "password": "wrong password", "code": ""}
            async with client.post(box.url + "/login", data=form) as response:
                assert response.status == 403
        assert await box.login(client) == 403  # locked: the right password is not compared
        assert "login 'anna' locked after repeated failures" in caplog.text
        assert PASSWORD not in caplog.text and "wrong password" not in caplog.text
        assert await box.login(box.client(), "huber") == 303  # another account is not locked


async def test_logging_out_ends_the_session(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        async with client.get(box.url + "/log", allow_redirects=False) as response:
            assert response.status == 200
        token = await box.csrf(client, "/log")
        async with client.post(
            box.url + "/logout", data={"csrf": token}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with client.get(box.url + "/log", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login"


async def test_two_factor_once_confirmed_is_asked(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        token = await box.csrf(client, "/account")
        async with client.post(box.url + "/account/totp", data={"csrf": token}) as response:
            page = await response.text()
        found = re.search(r'name="raw" value="([0-9a-f]{40})"', page)
        assert found is not None, page[:500]
        # Setting up, the code is required: the login's "(if you set one up)" is not said here.
        assert t("de", "totp_code_now") in html.unescape(page)
        assert t("de", "totp_code") not in html.unescape(page)
        secret = bytes.fromhex(found.group(1))
        wrong = "000000" if totp_code(secret, time.time()) != "000000" else "111111"
        form = {"csrf": token, "raw": secret.hex()}
        async with client.post(
            box.url + "/account/totp/confirm", data={**form, "code": wrong}
        ) as response:
            assert response.status == 400
        async with client.post(
            box.url + "/account/totp/confirm",
            data={**form, "code": totp_code(secret, time.time())},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        assert await box.login(box.client()) == 403  # no code: refused
        assert await box.login(box.client(), code=totp_code(secret, time.time())) == 303
