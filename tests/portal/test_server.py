"""The middlewares every request passes, against the portal served in this process: no session
means the login page only, the CSRF double submit, the security headers and CSP on every
answer, the language kept on a redirect too, and the per-address limiter."""

from __future__ import annotations

import html
import re
from pathlib import Path

from gateway.operations.portal.server import AddressLimiter
from tests.portal.box import portal_box

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


async def test_security_headers_on_every_answer(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        for path, status in (("/login", 303), ("/log", 200), ("/entry/999999", 404)):
            async with client.get(box.url + path, allow_redirects=False) as response:
                assert response.status == status, path
                headers = response.headers
                assert headers["Content-Security-Policy"] == CSP, path
                assert headers["X-Content-Type-Options"] == "nosniff"
                assert headers["X-Frame-Options"] == "DENY"
                assert headers["Referrer-Policy"] == "no-referrer"
                assert headers["Cache-Control"] == "no-store"
                # Plain HTTP on loopback: no HSTS (it would pin a scheme the box does not serve).
                assert "Strict-Transport-Security" not in headers
        async with client.get(box.url + "/static/portal.css") as response:
            assert response.status == 200 and "no-store" not in response.headers.get(
                "Cache-Control", ""
            )
            assert response.headers["Content-Security-Policy"] == CSP


async def test_without_a_session_only_the_login_answers(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = box.client()
        for path in ("/", "/log", "/entry/1", "/grants", "/download", "/bundle", "/live"):
            async with client.get(box.url + path, allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/login", path
        async with client.post(box.url + "/erasure", data={}, allow_redirects=False) as response:
            assert response.status == 403
        async with client.get(box.url + "/login") as response:
            assert response.status == 200 and 'name="password"' in await response.text()


async def test_the_csrf_double_submit(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = box.client()
        token = await box.csrf(client, "/login")
        form = {"login": "anna", "password": "a long enough password", "code": ""}
        async with client.post(box.url + "/login", data=form, allow_redirects=False) as response:
            assert response.status == 403  # no token
        stranger = box.client()  # a token of another browser's cookie does not count
        async with stranger.post(
            box.url + "/login", data={**form, "csrf": token}, allow_redirects=False
        ) as response:
            assert response.status == 403
        async with client.post(
            box.url + "/login", data={**form, "csrf": token}, allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/log"
        # Logged in, the session's own token is asked; the pre-login one no longer counts.
        async with client.post(
            box.url + "/erasure", data={"csrf": token, "by": "Anna", "confirm": "yes"}
        ) as response:
            assert response.status == 403
        assert box.store().erasure_requests() == []
        good = await box.csrf(client, "/erasure")
        async with client.post(
            box.url + "/erasure", data={"csrf": good, "by": "Anna", "confirm": "yes"}
        ) as response:
            assert response.status == 200
        assert [r.customer for r in box.store().erasure_requests()] == ["baeckerei-schmidt"]


async def test_the_language_is_kept_on_a_redirect(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        client = await box.session()
        async with client.get(box.url + "/?lang=en", allow_redirects=False) as response:
            assert response.status == 303
            assert response.cookies["einblick-lang"].value == "en"
        german = {"Accept-Language": "de-DE"}
        async with client.get(box.url + "/log", headers=german) as response:
            assert "What happened to your data" in await response.text()


def test_the_address_limiter_counts_within_its_window_and_stays_bounded() -> None:
    limiter = AddressLimiter(limit=3, window_s=60, capacity=2)
    for at in (0.0, 1.0, 2.0):
        assert not limiter.blocked("10.0.0.1", at)
        limiter.failed("10.0.0.1", at)
    assert limiter.blocked("10.0.0.1", 3.0)
    assert not limiter.blocked("10.0.0.1", 60.5)  # the first failure left the window
    limiter.failed("10.0.0.2", 61.0)
    limiter.failed("10.0.0.3", 61.0)  # capacity 2: the oldest address is forgotten
    assert set(limiter._seen) == {"10.0.0.2", "10.0.0.3"}


async def test_the_language_link_leads_to_a_page_from_every_page_a_form_answered(
    tmp_path: Path,
) -> None:
    """The switch on a page rendered for a POST (two-factor set-up, a refused erasure form)
    leads to that form's page, which answers 200 in the other language; on a page fetched with
    filters it keeps them."""
    async with portal_box(tmp_path) as box:
        client = await box.session()
        token = await box.csrf(client, "/account")
        pages = (
            ("/account/totp", {"csrf": token}, "/account?lang=en"),
            ("/erasure", {"csrf": token, "by": ""}, "/erasure?lang=en"),
        )
        for path, form, target in pages:
            # German for this answer (the English page fetched below keeps English in a cookie).
            async with client.post(f"{box.url}{path}?lang=de", data=form) as response:
                page = await response.text()
            found = re.search(r'id="lang-en" href="([^"]+)"', page)
            assert found is not None and html.unescape(found.group(1)) == target, path
            async with client.get(box.url + target, allow_redirects=False) as response:
                assert response.status == 200, target
                assert '<html lang="en">' in await response.text()
        async with client.get(box.url + "/log?outcome=withheld&lang=de&device=oven-1") as response:
            page = await response.text()
        found = re.search(r'id="lang-en" href="([^"]+)"', page)
        assert found is not None
        assert html.unescape(found.group(1)) == "/log?outcome=withheld&device=oven-1&lang=en"
