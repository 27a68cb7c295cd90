"""A customer's visit in a real browser: Debian's chromium, headless, driven by Playwright (no
browser download: ``executable_path``), against a real gateway on real Mosquitto and the portal
as its own process over HTTPS.

Screenshots at 390×844 (a phone) and 1280×800 are written to ``test-artefacts/portal/`` (or
``$EINBLICK_ARTEFACTS``); each is checked for the texts it must show, not for pixels.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import orjson
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from gateway.operations.portal.texts import t
from tests.portal.site import CUSTOMER, MARKERS, PASSWORD, PortalSite, cli, portal_site

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def artefacts() -> Path:
    found = Path(os.environ.get("EINBLICK_ARTEFACTS", ROOT / "test-artefacts")) / "portal"
    found.mkdir(parents=True, exist_ok=True)
    return found


async def shot(page: Page, name: str, *texts: str) -> None:
    """Write the screenshot, and check that what it shows carries ``texts`` (and nothing of the
    other customer)."""
    await page.screenshot(path=str(artefacts() / f"{name}.png"), full_page=True)
    shown = await page.inner_text("body")
    for text in texts:
        assert text in shown, f"{text!r} not on the {name} screenshot's page"
    for marker in MARKERS:
        assert marker not in shown, f"{marker!r} on the {name} screenshot's page"


async def context(browser: Browser, viewport: dict[str, int], locale: str) -> BrowserContext:
    # The box's CA is not in the browser's trust store; the HTTPS itself is tested with an
    # HTTP client that trusts exactly that CA (test_security.py).
    return await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        ignore_https_errors=True,
        accept_downloads=True,
        locale=locale,
    )


async def log_in(page: Page, site: PortalSite, login: str = "miriam") -> None:
    await page.goto(site.url + "/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login")
    await expect(page).to_have_url(re.compile(r"/log$"))


async def test_a_customer_logs_in_follows_withdraws_and_verifies(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        phone = await context(browser, PHONE, "en-GB")
        page = await phone.new_page()

        # The invitation: the customer sets their own password, then logs in.
        await page.goto(await site.invite())
        await expect(page.locator("h1")).to_have_text("Set up your access")
        await page.fill("input[name=login]", "miriam")
        await page.fill("input[name=password]", PASSWORD)
        await page.fill("input[name=password2]", PASSWORD)
        await page.click("#accept")
        await expect(page).to_have_url(re.compile(r"/login"))
        await log_in(page, site)
        await expect(page.locator("#follow")).to_have_text("FOLLOW")

        # Live: the device's message is on the open page within 2 s, without a reload.
        started = time.monotonic()
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        first = page.locator("#rows tr[data-seq]").first
        await expect(first).to_be_visible(timeout=2000)
        arrived = time.monotonic() - started
        assert arrived < 2.0, f"the entry took {arrived:.2f} s to appear"
        # The device by its display name, as the TUI shows it (its id on hover).
        await expect(first.locator("td[title=room-1]")).to_have_text("Meeting room")
        await shot(page, "log-390x844", "What happened to your data", "Meeting room", "FOLLOW")

        # An entry's explanation, what left the box, its proof from the one verifier.
        await first.locator("td.text a").click()
        await expect(page).to_have_url(re.compile(r"/entry/\d+$"))
        await expect(page.locator("#explanation")).not_to_be_empty()
        await expect(page.locator("#fields")).to_contain_text("occupancy")
        status = await page.inner_text("#proof-status")
        covered = t("en", "d_checkpoint_ok", size=1, at="").split("(")[0]
        assert status == t("en", "d_checkpoint_none") or status.startswith(covered), status
        await shot(page, "entry-390x844", "Explanation", "Proof", "occupancy")

        # Who gets what: withdraw, saying who acts; the receipt comes back and verifies.
        await page.click("text=Who gets what")
        grant = page.locator("#grant-demand-heating")
        await expect(grant).to_contain_text("Heating by occupancy")
        await grant.locator("input[name=by]").fill("Miriam Berg")
        await grant.locator("button[type=submit]").click()
        await expect(page).to_have_url(re.compile(r"/receipts/\d+$"))
        await expect(page.locator("#receipt-said")).to_contain_text("withdrawn")
        await shot(page, "receipt-390x844", "Your receipt", "demand-heating")
        async with page.expect_download() as receipt_download:
            await page.click("#receipt-download")
        receipt = tmp_path / "receipt.json"
        await (await receipt_download.value).save_as(receipt)
        key = site.directory / "data" / "keys" / "signing.pub"
        code, out, err = await cli("receipt", "verify", str(receipt), "--key", str(key))
        assert code == 0, out + err
        assert "Miriam Berg (portal: miriam)" in receipt.read_text()

        # An objection on a legitimate-interests grant: the page offers object and restrict
        # (the gateway's actions for that basis), not withdraw; a second tab keeps the form.
        await page.click("text=Who gets what")
        statistics = page.locator("#grant-grid-statistics")
        await expect(statistics.locator("form")).to_have_count(2)
        assert await statistics.locator("form").evaluate_all(
            "forms => forms.map(f => f.dataset.action)"
        ) == ["object", "restrict"]
        await expect(page.locator("#grant-demand-heating form")).to_have_attribute(
            "data-action", "give"
        )
        second = await phone.new_page()
        await second.goto(site.url + "/grants")
        await statistics.locator("form[data-action=object] input[name=by]").fill("Miriam Berg")
        await statistics.locator("form[data-action=object] button").click()
        await expect(page).to_have_url(re.compile(r"/receipts/\d+$"))
        await expect(page.locator("#receipt-said")).to_contain_text("Objection recorded")
        objection_seq = int(page.url.rsplit("/", 1)[1])
        async with page.expect_download() as record_download:
            await page.click("#record-download")
        saved = await (await record_download.value).path()
        record = orjson.loads(saved.read_bytes())
        # The objection as a DPO's tools read it: GDPR Art. 21 exercised.
        assert record["@type"] == "dpv:RightExerciseActivity", record
        assert record["dpv:hasRight"] == {"@id": "eu-gdpr:A21"}, record
        await page.click("text=Who gets what")
        await expect(page.locator("#grant-grid-statistics")).to_contain_text("objected to")
        await expect(page.locator("#grant-grid-statistics form")).to_have_attribute(
            "data-action", "lift"
        )

        # The same objection again, from the stale tab: nothing is written, the earlier entry
        # is named, and the log holds exactly one objection entry.
        latest_before = site.latest_seq()
        form = second.locator("#grant-grid-statistics form[data-action=object]")
        await form.locator("input[name=by]").fill("Miriam Berg")
        await form.locator("button").click()
        await expect(second.locator("h1")).to_have_text("Nothing changed")
        said = second.locator("#unchanged-said")
        await expect(said).to_contain_text(f"#{objection_seq}")
        await expect(said).to_contain_text("Nothing new was written")
        await expect(second.locator("#unchanged-entry")).to_have_attribute(
            "href", f"/entry/{objection_seq}"
        )
        assert site.latest_seq() == latest_before
        await second.close()

        # The bundle and the key, downloaded, verify with the CLI at home.
        await page.click("text=Download & verify")
        # The checkpoint to keep: a C2SP signed note of this customer's tree, taken first.
        async with page.expect_download() as checkpoint_download:
            await page.click("#checkpoint-link")
        kept = tmp_path / (await checkpoint_download.value).suggested_filename
        await (await checkpoint_download.value).save_as(kept)
        assert kept.name.startswith(f"einblick-{CUSTOMER}-") and kept.suffix == ".checkpoint"
        assert kept.read_text().splitlines()[0].endswith(CUSTOMER), kept.read_text()
        since = await page.inner_text("#verify-since")
        assert since == (
            f"einblick verify einblick-{CUSTOMER}.bundle --key einblick-gateway.pub"
            f" --since {kept.name}"
        )
        async with page.expect_download() as bundle_download:
            await page.click("#bundle-link")
        bundle = tmp_path / "mine.bundle"
        await (await bundle_download.value).save_as(bundle)
        async with page.expect_download() as key_download:
            await page.click("#key-link")
        home_key = tmp_path / "gateway.pub"
        await (await key_download.value).save_as(home_key)
        code, out, err = await cli("verify", str(bundle), "--key", str(home_key))
        assert code == 0, out + err
        # As the page says: the new bundle against the checkpoint kept from before.
        code, out, err = await cli(
            "verify", str(bundle), "--key", str(home_key), "--since", str(kept)
        )
        assert code == 0, out + err
        assert CUSTOMER in bundle.read_text() and "hof-sonne" not in bundle.read_text()

        # German, chosen on the page; it stays chosen on the next page.
        await page.click("#lang-de")
        await expect(page.locator("h1")).to_have_text("Ihr Protokoll mitnehmen")
        await page.click("text=Mein Protokoll")
        await expect(page.locator("h1")).to_have_text("Was mit Ihren Daten geschah")
        await shot(page, "log-de-390x844", "Was mit Ihren Daten geschah", "FOLGEN")

        # A laptop, a second session of the same customer, in its browser's language (German).
        laptop = await context(browser, DESKTOP, "de-DE")
        desk = await laptop.new_page()
        await log_in(desk, site)
        await expect(desk.locator("h1")).to_have_text("Was mit Ihren Daten geschah")
        await expect(desk.locator("#rows tr[data-seq]").first).to_contain_text("widersprochen")
        await shot(desk, "log-1280x800", "Entscheidung", "Gerät", "Meeting room")
        await browser.close()


async def fits(page: Page, name: str, lang: str) -> None:
    """The page is in ``lang`` and nothing on it is wider than the phone (a long hash or
    version pushed the entry page to 887 px: readable only by scrolling sideways)."""
    assert await page.get_attribute("html", "lang") == lang, name
    wide = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], f"{name} is {wide[0]} px wide on a {wide[1]} px phone"


async def test_every_page_and_action_on_a_phone_in_german_and_english(tmp_path: Path) -> None:
    async with portal_site(tmp_path) as site, async_playwright() as pw:
        await site.publish(CUSTOMER, "room-1", "zigbee2mqtt/room-1", 1)
        await site.harness.wait_committed(1)
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for lang, locale in (("de", "de-DE"), ("en", "en-GB")):
            phone = await context(browser, PHONE, locale)
            page = await phone.new_page()
            await page.goto(await site.invite())
            await fits(page, "invitation", lang)
            login = f"kunde-{lang}"
            await page.fill("input[name=login]", login)
            await page.fill("input[name=password]", PASSWORD)
            await page.fill("input[name=password2]", PASSWORD)
            await page.click("#accept")
            await fits(page, "login", lang)
            await log_in(page, site, login)
            first = page.locator("#rows tr[data-seq] td.text a").first
            await expect(first).to_be_visible(timeout=5000)
            await fits(page, "log", lang)
            await first.click()
            await expect(page.locator("h1")).to_contain_text(t(lang, "details_title", seq=""))
            await fits(page, "entry", lang)
            await shot(page, f"walk-entry-{lang}-390x844", t(lang, "d_proof"))

            pages = (
                ("/grants", t(lang, "grants_title")),
                ("/report", "Berg & Partner"),  # the report's title: the policy's name
                ("/download", t(lang, "download_title")),
                ("/erasure", t(lang, "erasure_title")),
                ("/account", t(lang, "account_title")),
            )
            for path, heading in pages:
                await page.goto(site.url + path)
                await expect(page.locator("h1")).to_contain_text(heading)
                await fits(page, path, lang)
                await shot(page, f"walk-{path.strip('/')}-{lang}-390x844", heading)

            # Who gets what names the device as the log does, by its name.
            await page.goto(site.url + "/grants")
            devices = t(lang, "g_devices", devices="Meeting room")
            await expect(page.locator("#grant-grid-statistics")).to_contain_text(devices)
            # Restrict, then lift, each with its receipt in this language.
            for action, kind in (
                ("restrict", "kind_restriction"),
                ("lift", "kind_restriction_lifted"),
            ):
                form = page.locator(f"#grant-grid-statistics form[data-action={action}]")
                await form.locator("input[name=by]").fill("Miriam Berg")
                await form.locator("button").click()
                await expect(page).to_have_url(re.compile(r"/receipts/\d+$"))
                await expect(page.locator("#receipt-said")).to_contain_text(t(lang, kind))
                await fits(page, f"{action} receipt", lang)
                await page.goto(site.url + "/grants")

            # An erasure request: listed at once, waiting for the installer.
            await page.goto(site.url + "/erasure")
            await page.fill("input[name=by]", "Miriam Berg")
            await page.check("input[name=confirm]")
            await page.click("#erasure-send")
            requests = page.locator("#erasure-requests")
            await expect(requests).to_contain_text("Miriam Berg")
            await fits(page, "erasure sent", lang)

            # The language switch on a page that answered a form leads to a page, not a 405.
            await page.goto(site.url + "/account")
            await page.click("#totp-start")
            await expect(page.locator("#totp-secret")).to_be_visible()
            other = "en" if lang == "de" else "de"
            await page.click(f"#lang-{other}")
            await expect(page.locator("h1")).to_have_text(t(other, "account_title"))
            await fits(page, "account after the switch", other)
            await phone.close()
        await browser.close()
