"""Which rights the grants page offers and passes on, and the words for an action already in
force. The pages themselves are driven in a real browser by tests/portal/test_browser.py (an
objection on a legitimate-interests grant, its receipt and record, and the repeat)."""

from __future__ import annotations

import html

import pytest

from gateway.operations.control_model import ConsentReply, GrantInfo
from gateway.operations.portal.rights_pages import _unchanged, allowed, offered
from gateway.operations.portal.server import templates
from gateway.operations.portal.texts import LANGS, t


def grant(basis: str, actions: list[str], held_by: str | None = None) -> GrantInfo:
    return GrantInfo(
        id="g",
        recipient="r",
        recipient_name="R",
        purpose={"de": "Zweck", "en": "Purpose"},
        legal_basis=basis,
        consent=None,
        withdrawn=held_by is not None,
        held_by=held_by,
        actions=actions,
        fields=["occupancy"],
        devices=["room-1"],
    )


def test_a_free_grant_offers_the_gateways_actions_in_its_order() -> None:
    assert offered(grant("legitimate_interests", ["object", "restrict"])) == ["object", "restrict"]
    assert offered(grant("consent", ["withdraw"])) == ["withdraw"]
    assert offered(grant("contract", ["restrict"])) == ["restrict"]


def test_a_held_grant_offers_only_what_releases_it() -> None:
    assert offered(grant("consent", ["withdraw"], "consent")) == ["give"]
    assert offered(grant("legitimate_interests", ["object", "restrict"], "objection")) == ["lift"]
    assert offered(grant("contract", ["restrict"], "restriction")) == ["lift"]


def test_a_repeated_hold_is_passed_on_but_never_a_right_the_basis_does_not_give() -> None:
    held = grant("legitimate_interests", ["object", "restrict"], "objection")
    assert allowed(held) == {"lift", "object", "restrict"}
    assert "withdraw" not in allowed(grant("legitimate_interests", ["object", "restrict"]))
    assert "give" not in allowed(grant("consent", ["withdraw"]))  # nothing to give back yet
    assert allowed(grant("consent", ["withdraw", "erase-everything"])) == {"withdraw"}


def reply(entry_seq: int) -> ConsentReply:
    return ConsentReply(
        action="object",
        changed=False,
        message="already done",
        kind="objection",
        entry_seq=entry_seq,
        by="Miriam Berg (portal: miriam)" if entry_seq else "",
        at="2026-12-03T17:00:00+00:00" if entry_seq else "",
    )


def test_an_action_already_in_force_names_the_earlier_entry() -> None:
    said, seq = _unchanged(reply(42), "en")
    assert seq == 42
    assert said.startswith("Objection recorded was already in force: log entry #42")
    assert "Miriam Berg (portal: miriam)" in said and "Nothing new was written" in said
    said_de, _ = _unchanged(reply(42), "de")
    assert "#42" in said_de and said_de != said


def test_nothing_to_undo_says_so_without_an_entry() -> None:
    said, seq = _unchanged(reply(0), "en")
    assert seq is None
    assert said.startswith("Nothing to do: this grant already applies as its policy says")


def _grants_page(lang: str, info: GrantInfo) -> str:
    """grants.html as the portal renders it, for one grant (its autoescaping and catalogs)."""
    return (
        templates()
        .get_template("grants.html")
        .render(
            lang=lang,
            langs=LANGS,
            t=lambda key, **p: t(lang, key, **p),
            session=None,
            csrf="token",
            path="/grants",
            switch="/grants?",
            grants=[info],
            error=None,
            offered=offered,
            devices={info.id: "Meeting room"},
        )
    )


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("held_by", ["consent", "objection", "restriction"])
def test_a_held_grant_does_not_say_its_recipient_gets_anything(lang: str, held_by: str) -> None:
    """Withdrawn, objected to or restricted: the heading said "R gets, for Purpose" above the
    hold, which was false while the hold lasts."""
    held = grant("legitimate_interests", ["object", "restrict"], held_by).model_copy(
        update={"sends": {"de": ["Bekommt: occupancy"], "en": ["Receives: occupancy"]}}
    )
    page = html.unescape(_grants_page(lang, held))
    purpose = held.purpose[lang]
    assert t(lang, "g_grant", recipient="R", purpose=purpose) not in page
    assert t(lang, "g_grant_held", recipient="R", purpose=purpose) in page
    assert t(lang, "g_would_allow") in page
    free = html.unescape(_grants_page(lang, grant("legitimate_interests", ["object"])))
    assert t(lang, "g_grant", recipient="R", purpose=purpose) in free
    assert t(lang, "g_would_allow") not in free


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize(
    "lapsed",
    [
        "validity_expired",
        "validity_not_yet_valid",
        "consent_expired",
        "consent_not_yet_valid",
    ],
)
def test_a_grant_not_in_force_by_its_dates_does_not_say_its_recipient_gets_anything(
    lang: str, lapsed: str
) -> None:
    """Expired or not begun (the engine withholds everything under it), the page said "✓ R
    gets, for Purpose" and nothing else."""
    off = grant("contract", ["restrict"]).model_copy(update={"lapsed": lapsed})
    page = html.unescape(_grants_page(lang, off))
    purpose = off.purpose[lang]
    assert t(lang, "g_grant", recipient="R", purpose=purpose) not in page
    assert f"✗ {t(lang, 'g_grant_held', recipient='R', purpose=purpose)}" in page
    assert t(lang, f"g_would_allow_{lapsed.partition('_')[2]}") in page
    assert t(lang, f"g_lapsed_{lapsed}") in page
    assert t(lang, "g_would_allow") not in page  # "applies again": it never applied, or ended
