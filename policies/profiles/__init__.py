"""Payload profiles: what the fields of real device formats mean, in words a customer reads.

A profile describes one device family (OwnTracks, Zigbee2MQTT, Tasmota, ...): the topic layouts
its firmware uses and, per field, what kind of data it is, whether it is personal data, how to
name it in German and English, and which treatment a policy author should consider. The profiles
are data, one file per family (``policies/profiles/<name>.yaml``, shipped in the wheel; the format
in ``profile_files.py``), read once at import. Nothing here reads a clock, a file or a socket
after that.

Here: the profiles as read (``PROFILES``) and the lookups on them. The words (categories,
treatments, the advice for each) are ``vocabulary.py``; a profile and its errors ``profile.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files

# Importable from here as before the split. Re-exported by name, not in ``__all__``: each name's
# home is its module (tests/packaging/test_exports.py).
from policies.profiles.profile import Field as Field
from policies.profiles.profile import Profile as Profile
from policies.profiles.profile import ProfileDataError as ProfileDataError
from policies.profiles.profile import ProfileError as ProfileError
from policies.profiles.profile import Suggestion as Suggestion
from policies.profiles.profile import TopicMatch as TopicMatch
from policies.profiles.profile import UnknownLanguage as UnknownLanguage
from policies.profiles.profile import UnknownProfile as UnknownProfile
from policies.profiles.profile import level_captures as level_captures
from policies.profiles.profile import match_topic as match_topic
from policies.profiles.profile_files import load_profiles as load_profiles
from policies.profiles.vocabulary import ADVICE, CATEGORY_LABELS, TREATMENT_RATIONALE
from policies.profiles.vocabulary import LANGUAGES as LANGUAGES
from policies.profiles.vocabulary import Category as Category
from policies.profiles.vocabulary import Personal as Personal
from policies.profiles.vocabulary import Treatment as Treatment

__all__ = ["PROFILES", "category_label", "label", "profile", "suggestions"]


# Read once at import: package data shipped in the wheel, no other I/O.
PROFILES: Mapping[str, Profile] = load_profiles(files(__name__))


def profile(name: str) -> Profile:
    """The profile called ``name``; raises ``UnknownProfile`` naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(name, tuple(sorted(PROFILES))) from None


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise UnknownLanguage(lang, LANGUAGES)


def label(profile_name: str, path: str, lang: str) -> str | None:
    """The label of ``path`` in ``profile_name`` in language ``lang``; None for unknown paths."""
    _check_lang(lang)
    f = profile(profile_name).field(path)
    return None if f is None else f.labels[lang]


def category_label(category: Category, lang: str) -> str:
    _check_lang(lang)
    return CATEGORY_LABELS[category][lang]


_ORDER = {Personal.DIRECT: 0, Personal.INDIRECT: 1, Personal.NONE: 2}


def suggestions(profile_name: str) -> list[Suggestion]:
    """Suggested treatments for every field, direct personal data first, then indirect."""
    p = profile(profile_name)
    out = []
    for f in sorted(p.fields, key=lambda f: _ORDER[f.personal]):
        default_treatment, _, rationale = ADVICE[f.category]
        if f.treatment is not default_treatment:
            rationale = TREATMENT_RATIONALE[f.treatment]
        out.append(Suggestion(f.path, f.category, f.personal, f.treatment, f.detail, rationale))
    return out
