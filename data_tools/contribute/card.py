"""The dataset card: ``DIR/README.md`` with YAML front matter, read into a typed record.

Every missing or malformed field becomes one Problem naming the file and the fix, so a
contributor sees all of them at once. The template lives in data_tools/templates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from data_tools.contribute.layout import CARD_NAME, FILE_FIXES, regular_file
from data_tools.contribute.records import WARNING, Problem
from data_tools.inputs.package import front_matter
from kani_adapt.core.errors import DataError

MAX_CARD_BYTES = 1_000_000  # a card is a page of text; a larger file is refused unread
# Licence ids as the Hugging Face Hub spells them; open licences a TTS dataset may carry.
OPEN_LICENSES = {
    "cc0-1.0", "cc-by-4.0", "cc-by-3.0", "cc-by-2.0", "cc-by-sa-4.0", "cc-by-sa-3.0",
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "odc-by", "odbl", "pddl",
    "cdla-permissive-2.0", "cdla-sharing-1.0", "unlicense",
}
# Known but restrictive: accepted, with a warning that models trained on it inherit the terms.
RESTRICTED_LICENSES = {"cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nd-4.0",
                       "cc-by-nc-3.0", "cc-by-nc-sa-3.0"}
LANGUAGE = re.compile(r"[a-z]{2,3}")
ACCENT = re.compile(r"[a-z]{2,3}(_[a-z0-9]+)+")  # language, then the accent: de_hessian
PLACEHOLDER = re.compile(r"<[^>]*>|\bTODO\b")  # template text left in place


@dataclass
class Speaker:
    id: str
    clips: int  # audio files of this speaker, over all splits
    accent: str


@dataclass
class Card:
    path: Path
    pretty_name: str = ""
    license: str = ""
    license_name: str = ""  # for license: other
    license_text: str = ""  # for license: other (or a link to it)
    language: str = ""
    accents: list[str] = field(default_factory=list)
    consent_statement: str = ""
    speakers: list[Speaker] = field(default_factory=list)
    body: str = ""  # the Markdown after the front matter


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _licence(data: dict, card: Card, name: str) -> list[Problem]:
    card.license = _text(data, "license").lower()
    card.license_name, card.license_text = _text(data, "license_name"), \
        _text(data, "license_text") or _text(data, "license_link")
    if not card.license:
        return [Problem("card", "license_missing", f"{name}: no 'license:' field; add an open "
                        "licence id such as 'license: cc-by-4.0', or 'license: other' with "
                        "'license_name:' and 'license_text:'")]
    if card.license == "other":
        if card.license_text and card.license_name:
            return []
        return [Problem("card", "license_text_missing", f"{name}: 'license: other' needs "
                        "'license_name:' and the terms in 'license_text:' (or 'license_link:')")]
    if card.license in RESTRICTED_LICENSES:
        return [Problem("card", "license_restricted", f"{name}: {card.license} restricts use; "
                        "models trained on this dataset inherit its terms", WARNING)]
    if card.license not in OPEN_LICENSES:
        return [Problem("card", "license_unknown", f"{name}: unknown licence {card.license!r}; "
                        f"use one of {', '.join(sorted(OPEN_LICENSES))}, or 'license: other' "
                        "with 'license_name:' and 'license_text:'")]
    return []


def _consent(data: dict, card: Card, name: str) -> list[Problem]:
    consent = data.get("consent")
    if not isinstance(consent, dict):
        return [Problem("card", "consent_missing", f"{name}: no 'consent:' section; add "
                        "'statement:', 'recording: true', 'redistribution: true' and "
                        "'tts_training: true' under it (see the card template)")]
    card.consent_statement = _text(consent, "statement")
    out = []
    if not card.consent_statement or PLACEHOLDER.search(card.consent_statement):
        out.append(Problem("card", "consent_statement_missing", f"{name}: 'consent.statement' "
                           "is empty or still the template text; say how and when speakers "
                           "agreed"))
    unconfirmed = [k for k in ("recording", "redistribution", "tts_training")
                   if consent.get(k) is not True]
    if unconfirmed:
        out.append(Problem("card", "consent_not_confirmed", f"{name}: consent."
                           f"{', consent.'.join(unconfirmed)} must be 'true': every speaker "
                           "agreed to be recorded and to redistribution for TTS training"))
    return out


def _tags(data: dict, card: Card, name: str) -> list[Problem]:
    out = []
    card.language = _text(data, "language")
    if not LANGUAGE.fullmatch(card.language):
        out.append(Problem("card", "language_invalid", f"{name}: 'language:' must be an "
                           "ISO 639 code in lower case, e.g. 'language: de'"))
    raw = data.get("accent")
    card.accents = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    bad = [a for a in card.accents if not (isinstance(a, str) and ACCENT.fullmatch(a))]
    if not card.accents or bad:
        out.append(Problem("card", "accent_invalid", f"{name}: 'accent:' must be one tag or a "
                           "list of tags like 'de_hessian' (language, '_', accent; lower case)"
                           + (f"; not {bad[0]!r}" if bad else "")))
        card.accents = [a for a in card.accents if a not in bad]
    wrong = [a for a in card.accents if card.language and not a.startswith(card.language + "_")]
    if wrong and not out:
        out.append(Problem("card", "accent_language_mismatch", f"{name}: accent {wrong[0]!r} "
                           f"does not start with the language '{card.language}_'"))
    return out


def _speakers(data: dict, card: Card, name: str) -> list[Problem]:
    raw = data.get("speakers")
    if not isinstance(raw, list) or not raw:
        return [Problem("card", "speakers_missing", f"{name}: no 'speakers:' list; add one "
                        "entry per speaker: '- id: <folder name>' and 'clips: <count>'")]
    out, default = [], card.accents[0] if len(card.accents) == 1 else ""
    for i, entry in enumerate(raw):
        entry = entry if isinstance(entry, dict) else {}
        sid, clips = str(entry.get("id", "")).strip(), entry.get("clips")
        accent = str(entry.get("accent", default)).strip()
        if not sid or not isinstance(clips, int) or isinstance(clips, bool):
            out.append(Problem("card", "speaker_entry_invalid", f"{name}: speakers[{i}] needs "
                               "'id:' (the speaker's folder name) and 'clips:' (a whole number)"))
            continue
        if accent not in card.accents:
            out.append(Problem("card", "speaker_accent_invalid", f"{name}: speaker {sid!r} "
                               f"needs 'accent:' set to one of the card's accents "
                               f"({', '.join(card.accents) or 'none given'})"))
        card.speakers.append(Speaker(sid, clips, accent))
    return out


def read_card(root: Path) -> tuple[Card | None, list[Problem]]:
    """The card of the dataset at ``root`` and every problem with it; read only when it is a
    regular file inside ``root`` (a README.md linking elsewhere is refused unread)."""
    path = root / CARD_NAME
    refused = regular_file(root, path)
    if refused == "missing":
        return None, [Problem("card", "card_missing", f"{path}: no dataset card; copy "
                              "data_tools/templates/contribution_card.md there and fill it in")]
    if refused:
        return None, [Problem("card", f"card_{refused}", f"{path}: not read: "
                              f"{FILE_FIXES[refused]}")]
    with open(path, "rb") as fh:
        raw = fh.read(MAX_CARD_BYTES + 1)
    if len(raw) > MAX_CARD_BYTES:
        return None, [Problem("card", "card_too_large", f"{path}: more than "
                              f"{MAX_CARD_BYTES // 1000} kB; a card is a page of text")]
    try:
        data, body = front_matter(raw.decode("utf-8"), path)
    except UnicodeDecodeError:
        return None, [Problem("card", "card_unparsable", f"{path}: not UTF-8 text; save it "
                              "as UTF-8")]
    except DataError as err:
        return None, [Problem("card", "card_unparsable", str(err))]
    card = Card(path=path, pretty_name=_text(data, "pretty_name"), body=body)
    problems = []
    for part in (_licence, _consent, _tags, _speakers):
        problems += part(data, card, CARD_NAME)
    return card, problems
