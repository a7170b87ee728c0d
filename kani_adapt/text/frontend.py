"""The text frontend: what the model is given to read, identical at every step.

``normalize(text, language)`` is applied by the data tools (filter stage), by training when it
builds examples, by ``generate``, by evaluation and by recipe samples, so "3 Katzen" is spoken
as it was trained ("drei Katzen"). Steps, in order:

1. Unicode NFC; control and invisible characters removed (byte-order mark, zero-width space,
   soft hyphen, bidi controls; ZWJ/ZWNJ are kept: Persian and Indic spelling needs them);
   variation selectors removed (U+FE0F asks for an emoji's picture, others for a glyph's
   shape: nothing is said differently) and private-use characters (no standard meaning: a
   font's icons) unless a text is written mostly in them (a script encoded there); each with
   one warning; whitespace folded to single spaces.
2. Per language (:mod:`kani_adapt.text.languages`): abbreviations, currencies with their
   amounts, dates (ISO, ``3. Mai 2024``, ``3rd May``), clock times, phone numbers (digit by
   digit), thousands separators, decimals, ordinals, units after a number, symbols, then every
   remaining number. Cardinals from num2words, Swahili spelled here; a language neither knows
   keeps its digits, with one warning per language.

NeMo text processing was measured as a backend and not adopted: it installs beside the pins
(692 MB with pynini) but compiles its German grammars for 170 s and then takes seconds per
sentence on these CPUs, and read ``3. Mai`` as ``dritter mai`` and ``14:30`` as
``vierzehn : dreißig``.

The identity of a frontend (:meth:`Frontend.identity`: name, version, backend, languages,
settings) is stored beside the data, the training run and every export (``text_frontend.json``);
``generate`` and eval read it back (:func:`read`) so a model is always given what it learnt.
Running ``normalize`` on its own output changes nothing, so re-applying it is safe.
"""
from __future__ import annotations

import json
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kani_adapt.text import languages as langs
from kani_adapt.text.tags import language_of

VERSION = "2"  # bump when a reading changes: stored identities then differ (2: selectors out)
FILE = "text_frontend.json"
KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ: they change how Persian and Indic text is spelled
_WARNED: set[str] = set()


def variation_selector(char: str) -> bool:
    """VS1-16 (U+FE00-FE0F: U+FE0F asks for an emoji's picture) and VS17-256 (U+E0100-E01EF)."""
    return "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef"


def clean(text: str) -> str:
    """NFC, control, invisible and meaningless characters out, whitespace folded (step 1)."""
    text = unicodedata.normalize("NFC", text)
    private = sum(unicodedata.category(c) == "Co" for c in text)
    script = private * 2 > len("".join(text.split()))  # written mostly in them: they are letters
    kept, dropped = [], set()
    for char in text:
        cat = unicodedata.category(char)
        if cat == "Cc":
            kept.append(" " if char in "\t\n\r\x0b\x0c" else "")
        elif cat == "Cf" and char not in KEEP_FORMAT:
            continue
        elif variation_selector(char) or (cat == "Co" and not script):
            dropped.add("selector" if cat != "Co" else "private")
        else:
            kept.append(char)
    for kind in sorted(dropped | ({"private script"} if private and script else set())):
        _warn_once(kind, MEANINGLESS[kind])
    return " ".join("".join(kept).split())


MEANINGLESS = {  # what clean() says once per process about the characters it meets
    "selector": "text frontend: variation selectors (U+FE0F after an emoji, U+FE00-FE0E, "
                "U+E0100-E01EF) dropped from the texts: they choose a glyph's look, nothing said",
    "private": "text frontend: private-use characters (U+E000-F8FF, planes 15-16) dropped from "
               "the texts: they have no standard meaning (a font's icons); spell out what they "
               "stand for in the transcripts",
    "private script": "text frontend: a text written mostly in private-use characters kept "
                      "them (a script encoded there); the tokenizer spells them in bytes",
}


def _warn_once(kind: str, message: str) -> None:
    if kind not in _WARNED:
        _WARNED.add(kind)
        warnings.warn(message, stacklevel=3)


def normalize(text: str, language: str, *, numbers: bool = True) -> str:
    """The text as the model reads it (see the module docstring); ``language`` is a code such
    as ``de``, ``en`` or ``sw`` (:func:`kani_adapt.text.tags.language_of` gives it from a tag)."""
    text = clean(text)
    if not numbers or not language:
        return text
    lang = langs.language(language)
    if lang is None:
        if re.search(r"\d", text) and language not in _WARNED:
            _WARNED.add(language)
            warnings.warn(f"text frontend: no number readings for language {language!r}; "
                          "digits are left as written (spell them out in the transcripts, or "
                          "use the per-row override column)", stacklevel=2)
        return text
    from kani_adapt.text.rules import spell

    return clean(spell(text, lang))


def backend() -> str:
    try:
        from importlib.metadata import version

        return f"kani-adapt rules + num2words {version('num2words')}"
    except Exception:  # noqa: BLE001 - num2words missing: only clean() and Swahili work
        return "kani-adapt rules"


@dataclass(frozen=True)
class Frontend:
    """How texts of each tag are normalised; stored with data, runs and exports."""

    language: str = ""  # one language for every tag; "" = from each tag ("de_hessian" -> de)
    languages: dict = field(default_factory=dict)  # tag -> language, wins over both
    numbers: bool = True  # spell out numbers, dates, symbols (False: step 1 only)
    enabled: bool = True  # False: texts are used exactly as written
    version: str = VERSION

    def language_for(self, tag: str | None) -> str:
        return language_of(tag, self.languages, self.language)

    def apply(self, text: str, tag: str | None, override: str | None = None) -> str:
        """The text the model reads for a row; a non-empty ``override`` (the dataset's
        :data:`kani_adapt.dataset.TEXT_OVERRIDE`) replaces the rules' reading."""
        if not self.enabled:
            return text
        if override:
            return clean(override)
        return normalize(text, self.language_for(tag), numbers=self.numbers)

    def identity(self, tags=()) -> dict:
        return {"name": "kani-adapt text frontend", "version": self.version, "backend": backend(),
                "enabled": self.enabled, "numbers": self.numbers, "language": self.language,
                "languages": {**{t: self.language_for(t) for t in sorted(set(tags)) if t},
                              **self.languages}}

    @classmethod
    def from_identity(cls, data: dict, where: str = "") -> "Frontend":
        if str(data.get("version", VERSION)) != VERSION:
            warnings.warn(f"{where}: text frontend version {data.get('version')} was used for "
                          f"this model, this install has version {VERSION}; readings of "
                          "numbers and symbols may differ", stacklevel=2)
        return cls(language=str(data.get("language", "")),
                   languages={str(k): str(v) for k, v in dict(data.get("languages", {})).items()},
                   numbers=bool(data.get("numbers", True)), enabled=bool(data.get("enabled", True)),
                   version=str(data.get("version", VERSION)))


def write(folder: str | Path, frontend: Frontend, tags=()) -> Path:
    from kani_adapt.core import atomic

    return atomic.write_text(Path(folder) / FILE,
                             json.dumps(frontend.identity(tags), indent=1, ensure_ascii=False))


def read(folder: str | Path) -> Frontend | None:
    """The frontend stored in a dataset, run or export folder; None when there is none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    from kani_adapt.core.model_files import read_json_object

    return Frontend.from_identity(read_json_object(path), where=str(path))


def describe(frontend: Frontend) -> str:
    """One line for cards and reports."""
    if not frontend.enabled:
        return "off (texts used as written)"
    langs_line = ", ".join(f"{t}: {l}" for t, l in sorted(frontend.identity()["languages"].items()))
    return (f"version {frontend.version}, {backend()}, numbers "
            f"{'spelled out' if frontend.numbers else 'kept'}"
            + (f", language {frontend.language}" if frontend.language else ", language from the tag")
            + (f" ({langs_line})" if langs_line else ""))
