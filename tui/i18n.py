"""Every string the TUI shows, in German and English: one catalog, looked up by key.

``t("follow", "de")`` -> ``"FOLGEN"``. Placeholders use ``str.format`` names. A key missing in
one language is a bug the catalog test catches (``tests/tui/test_i18n.py``), never a silent
fallback to the key itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from textual.dom import DOMNode

__all__ = ["CATALOG", "LANGUAGES", "Lang", "relabel", "t"]

Lang = Literal["de", "en"]
LANGUAGES: tuple[Lang, ...] = ("de", "en")

CATALOG: dict[str, dict[Lang, str]] = {
    "title": {"de": "Einblick", "en": "Einblick"},
    "follow": {"de": "FOLGEN", "en": "FOLLOW"},
    "paused": {"de": "PAUSE", "en": "PAUSED"},
    "new_rows": {"de": "+{n} neu", "en": "+{n} new"},
    "rows": {"de": "{n} Einträge", "en": "{n} entries"},
    "filtered": {"de": "Filter: {q}", "en": "filter: {q}"},
    "finding": {"de": "Suche: {q} ({n})", "en": "find: {q} ({n})"},
    "no_match": {"de": "Kein weiterer Treffer", "en": "No further match"},
    "no_withheld": {
        "de": "Kein weiterer zurückgehaltener Eintrag",
        "en": "No further withheld entry",
    },
    "customer_view": {"de": "Kunde {c}", "en": "customer {c}"},
    "all_customers": {"de": "alle Kunden", "en": "all customers"},
    "empty": {"de": "Noch keine Einträge.", "en": "No entries yet."},
    "loading": {"de": "…", "en": "…"},
    # decisions
    "shared": {"de": "geteilt", "en": "shared"},
    "altered": {"de": "verändert", "en": "altered"},
    "withheld": {"de": "zurückgehalten", "en": "withheld"},
    "event": {"de": "Ereignis", "en": "event"},
    "nobody": {"de": "—", "en": "—"},
    # columns
    "col_time": {"de": "Zeit", "en": "Time"},
    "col_device": {"de": "Gerät", "en": "Device"},
    "col_recipient": {"de": "Empfänger", "en": "Recipient"},
    "col_purpose": {"de": "Zweck", "en": "Purpose"},
    "col_summary": {"de": "Kurz", "en": "Summary"},
    # key labels (footer)
    "k_details": {"de": "Details", "en": "Details"},
    "k_filter": {"de": "Filter", "en": "Filter"},
    "k_find": {"de": "Suchen", "en": "Find"},
    "k_next": {"de": "Nächster", "en": "Next"},
    "k_prev": {"de": "Voriger", "en": "Prev"},
    "k_withheld_next": {"de": "✗ weiter", "en": "next ✗"},
    "k_withheld_prev": {"de": "Vorig. ✗", "en": "Prev ✗"},
    "k_follow": {"de": "Folgen", "en": "Follow"},
    "k_overview": {"de": "Übersicht", "en": "Overview"},
    "k_grants": {"de": "Freigaben", "en": "Grants"},
    "k_lang": {"de": "EN", "en": "DE"},
    "k_help": {"de": "Hilfe", "en": "Help"},
    "k_quit": {"de": "Beenden", "en": "Quit"},
    "k_back": {"de": "Zurück", "en": "Back"},
    "k_withdraw": {"de": "Widerrufen", "en": "Withdraw"},
    "k_log": {"de": "Protokoll", "en": "Log"},
    # prompts
    "filter_prompt": {
        "de": "Filter (blendet aus): device: recipient: customer: decision:withheld Text",
        "en": "Filter (hides): device: recipient: customer: decision:withheld text",
    },
    "find_prompt": {
        "de": "Suchen (hebt hervor, n/N): device: recipient: decision: Text",
        "en": "Find (highlights, n/N): device: recipient: decision: text",
    },
    "bad_query": {"de": "Unverständlicher Filter: {e}", "en": "Cannot read the filter: {e}"},
    # details
    "details_title": {"de": "Eintrag #{seq}", "en": "Entry #{seq}"},
    "d_explanation": {"de": "Erklärung", "en": "Explanation"},
    "d_when": {"de": "Zeitpunkt", "en": "When"},
    "d_customer": {"de": "Kunde", "en": "Customer"},
    "d_device": {"de": "Gerät", "en": "Device"},
    "d_recipient": {"de": "Empfänger", "en": "Recipient"},
    "d_decision": {"de": "Entscheidung", "en": "Decision"},
    "d_purpose": {"de": "Zweck", "en": "Purpose"},
    "d_basis": {"de": "Rechtsgrundlage", "en": "Legal basis"},
    "d_fields": {"de": "Felder", "en": "Fields"},
    "d_shared": {"de": "Geteilt", "en": "Shared"},
    "d_altered": {"de": "Verändert", "en": "Altered"},
    "d_withheld": {"de": "Zurückgehalten", "en": "Withheld"},
    "d_reason": {"de": "Grund", "en": "Reason"},
    "d_payload": {
        "de": "Nutzdaten, wie sie das Gerät verließen",
        "en": "Payload as it left the box",
    },
    "d_topic": {"de": "Thema", "en": "Topic"},
    "d_erased": {
        "de": "(gelöscht auf Wunsch – der Nachweis bleibt)",
        "en": "(erased on request – the proof remains)",
    },
    "d_no_payload": {"de": "(nichts gesendet)", "en": "(nothing sent)"},
    "d_grant": {"de": "Freigabe", "en": "Grant"},
    "d_policy": {"de": "Richtlinie (Version)", "en": "Policy (version)"},
    "d_proof": {"de": "Nachweis", "en": "Proof"},
    "d_chain": {"de": "Kette / Position", "en": "Chain / index"},
    "d_hash": {"de": "Eintrags-Hash", "en": "Entry hash"},
    "d_checkpoint": {"de": "Signierter Prüfpunkt", "en": "Signed checkpoint"},
    "d_checkpoint_ok": {
        "de": "✓ abgedeckt (Größe {size}, {at}), Signatur gültig",
        "en": "✓ covered (size {size}, {at}), signature valid",
    },
    "d_checkpoint_bad": {
        "de": "✗ Signatur des Prüfpunkts ungültig",
        "en": "✗ checkpoint signature invalid",
    },
    "d_checkpoint_none": {
        "de": "✗ noch von keinem signierten Prüfpunkt abgedeckt",
        "en": "✗ not yet covered by a signed checkpoint",
    },
    "d_link": {"de": "Verkettung", "en": "Chain link"},
    "d_link_ok": {"de": "✓ Hash stimmt mit dem Vorgänger", "en": "✓ hash matches its predecessor"},
    "d_link_bad": {"de": "✗ Hash stimmt nicht", "en": "✗ hash does not match"},
    "d_key": {"de": "Schlüssel", "en": "Key"},
    "d_missing": {"de": "Eintrag #{seq} nicht gefunden.", "en": "Entry #{seq} not found."},
    # overview
    "overview_title": {"de": "Übersicht", "en": "Overview"},
    "o_recipient": {"de": "Empfänger", "en": "Recipient"},
    "o_hour": {"de": "1 h", "en": "1 h"},
    "o_day": {"de": "24 h", "en": "24 h"},
    "o_withheld": {"de": "✗ 24 h", "en": "✗ 24 h"},
    "o_rate": {"de": "Rate (24 h)", "en": "Rate (24 h)"},
    "o_fields": {"de": "Felder gesendet", "en": "Fields sent"},
    "o_never": {"de": "nie gesendet", "en": "never sent"},
    "o_none": {"de": "keine", "en": "none"},
    "o_gateway": {"de": "Gateway", "en": "Gateway"},
    "o_not_running": {"de": "Gateway läuft nicht", "en": "gateway not running"},
    "o_broker": {"de": "Geräte-Broker", "en": "Device broker"},
    "o_connected": {"de": "✓ verbunden", "en": "✓ connected"},
    "o_disconnected": {"de": "✗ getrennt", "en": "✗ disconnected"},
    "o_outbox": {"de": "Warteschlange", "en": "Outbox"},
    "o_checkpoint": {"de": "Letzter Prüfpunkt", "en": "Last checkpoint"},
    "o_seconds_ago": {"de": "vor {s:.1f} s", "en": "{s:.1f} s ago"},
    "o_upstreams": {"de": "Empfänger-Verbindungen", "en": "Upstream links"},
    "o_pipeline": {"de": "Verarbeitet", "en": "Pipeline"},
    "o_pipeline_line": {
        "de": "empfangen {received} · geteilt {shared} · verändert {altered} · zurückgeh. {withheld}",
        "en": "received {received} · shared {shared} · altered {altered} · withheld {withheld}",
    },
    "o_fail_closed": {
        "de": "✗ Datenbankfehler – nichts wird weitergegeben",
        "en": "✗ database failing – nothing is forwarded",
    },
    "o_disk": {"de": "Speicher", "en": "Disk"},
    "o_clock_back": {
        "de": "⚠ Systemuhr {n}× zurückgestellt (größter Sprung {step:.1f} s); "
        "Einträge behalten die Zeit des Protokolls",
        "en": "⚠ system clock went back {n}× (largest step {step:.1f} s); "
        "entries keep the log's time",
    },
    "o_policy_error": {
        "de": "✗ Richtlinie nicht geladen – nichts dieses Kunden geht hinaus: {e}",
        "en": "✗ policy not loaded – nothing of this customer leaves: {e}",
    },
    "o_empty": {"de": "Keine Einträge in den letzten 24 h.", "en": "No entries in the last 24 h."},
    # who gets what
    "grants_title": {"de": "Wer bekommt was", "en": "Who gets what"},
    "g_read_only": {
        "de": "Gateway läuft nicht – nur Ansicht aus den Richtliniendateien, kein Widerruf möglich.",
        "en": "Gateway not running – read-only view from the policy files, no withdrawal.",
    },
    "g_none": {"de": "Keine Richtlinien gefunden.", "en": "No policies found."},
    "g_grant": {
        "de": "{recipient} bekommt für „{purpose}“",
        "en": "{recipient} gets, for “{purpose}”",
    },
    "g_fields": {"de": "Felder: {fields}", "en": "fields: {fields}"},
    "g_all_fields": {"de": "alle Felder unverändert", "en": "all fields unchanged"},
    "g_devices": {"de": "von: {devices}", "en": "from: {devices}"},
    "g_basis": {"de": "Rechtsgrundlage: {basis}", "en": "legal basis: {basis}"},
    "g_consent": {"de": "Einwilligung von {by} am {at}", "en": "consent by {by} on {at}"},
    "g_withdrawn": {"de": "✗ Einwilligung widerrufen", "en": "✗ consent withdrawn"},
    "g_version": {"de": "Version {v}", "en": "version {v}"},
    "g_error": {"de": "✗ Fehler in der Richtlinie: {e}", "en": "✗ policy error: {e}"},
    "g_not_consent": {
        "de": "Diese Freigabe beruht nicht auf einer Einwilligung und kann hier nicht widerrufen werden.",
        "en": "This grant does not rest on consent and cannot be withdrawn here.",
    },
    "g_already": {"de": "Bereits widerrufen.", "en": "Already withdrawn."},
    "confirm_title": {"de": "Einwilligung widerrufen?", "en": "Withdraw consent?"},
    "confirm_body": {
        "de": "Ab der nächsten Nachricht bekommt {recipient} nichts mehr für „{purpose}“: "
        "{fields} von {devices}. Auch noch wartende Nachrichten werden nicht mehr gesendet. "
        "Der Widerruf wird signiert im Protokoll vermerkt.",
        "en": "From the next message on, {recipient} gets nothing more for “{purpose}”: "
        "{fields} from {devices}. Messages still queued are not sent either. "
        "The withdrawal is recorded as a signed log entry.",
    },
    "confirm_yes": {"de": "Widerrufen", "en": "Withdraw"},
    "confirm_no": {"de": "Abbrechen", "en": "Cancel"},
    "withdrawn_ok": {
        "de": "Widerrufen – Protokolleintrag #{seq}",
        "en": "Withdrawn – log entry #{seq}",
    },
    "withdraw_failed": {"de": "Widerruf fehlgeschlagen: {e}", "en": "Withdrawal failed: {e}"},
    # help
    "help_title": {"de": "Hilfe", "en": "Help"},
    "help_body": {
        "de": "Jede Zeile ist eine Entscheidung des Gateways: ✓ geteilt, ◐ verändert, "
        "✗ zurückgehalten.\n\n"
        "Enter      Details mit Erklärung, Nutzdaten und Nachweis\n"
        "f          Filter: blendet alles andere aus\n"
        "/          Suchen: hebt Treffer hervor, n / N springt\n"
        "w / W      nächster / voriger zurückgehaltener Eintrag\n"
        "End        wieder live folgen; Hochscrollen pausiert\n"
        "o          Übersicht je Empfänger, Verbindungen\n"
        "g          Wer bekommt was – Einwilligung widerrufen\n"
        "l          Sprache Deutsch / English\n"
        "Strg+P     Befehle\n"
        "q          Beenden\n\n"
        "Filter-Wörter: device:ofen recipient:wartung customer:schmidt decision:withheld, "
        "dazu freier Text.",
        "en": "Each row is one decision of the gateway: ✓ shared, ◐ altered, ✗ withheld.\n\n"
        "Enter      details: explanation, payload and proof\n"
        "f          filter: hides everything else\n"
        "/          find: highlights matches, n / N jump\n"
        "w / W      next / previous withheld entry\n"
        "End        follow live again; scrolling up pauses\n"
        "o          overview per recipient, connections\n"
        "g          who gets what – withdraw a consent\n"
        "l          language Deutsch / English\n"
        "ctrl+p     commands\n"
        "q          quit\n\n"
        "Filter tokens: device:oven recipient:maint customer:schmidt decision:withheld, "
        "plus free text.",
    },
    # command palette
    "c_overview": {"de": "Übersicht öffnen", "en": "Open the overview"},
    "c_grants": {"de": "Wer bekommt was öffnen", "en": "Open who gets what"},
    "c_lang": {
        "de": "Sprache wechseln (Deutsch/English)",
        "en": "Switch language (Deutsch/English)",
    },
    "c_follow": {"de": "Live folgen", "en": "Follow live"},
    "c_withheld": {"de": "Nur zurückgehaltene zeigen", "en": "Show only withheld"},
    "c_clear": {"de": "Filter und Suche löschen", "en": "Clear filter and find"},
    "c_help": {"de": "Hilfe zeigen", "en": "Show help"},
    # legal bases
    "lb_consent": {"de": "Einwilligung", "en": "consent"},
    "lb_contract": {"de": "Vertrag", "en": "contract"},
    "lb_legal_obligation": {"de": "rechtliche Verpflichtung", "en": "legal obligation"},
    "lb_vital_interests": {"de": "lebenswichtige Interessen", "en": "vital interests"},
    "lb_public_task": {"de": "öffentliche Aufgabe", "en": "public task"},
    "lb_legitimate_interests": {"de": "berechtigtes Interesse", "en": "legitimate interests"},
}


def t(key: str, lang: Lang, **params: object) -> str:
    """The catalog string ``key`` in ``lang``, formatted with ``params``."""
    text = CATALOG[key][lang]
    return text.format(**params) if params else text


def relabel(node: DOMNode, lang: Lang) -> None:
    """Show ``node``'s key bindings in ``lang``.

    A binding's description is written as its catalog key (``"k_details"``); once relabelled it
    holds a translation, which maps back to the key, so switching again works.
    """
    for key, bindings in node._bindings.key_to_bindings.items():
        labelled = []
        for binding in bindings:
            catalog_key = _KEY_OF.get(binding.description)
            labelled.append(
                binding
                if catalog_key is None
                else replace(binding, description=t(catalog_key, lang))
            )
        node._bindings.key_to_bindings[key] = labelled


_KEY_OF: dict[str, str] = {}
for _key, _texts in CATALOG.items():
    if _key.startswith("k_"):
        _KEY_OF[_key] = _key
        for _text in _texts.values():
            _KEY_OF.setdefault(_text, _key)
