"""A language/accent tag's facts, and the one way from a tag to its language.

A tag (``de_hessian``, ``en_glasgow``, ``sw``) marks the utterances of one language and accent.
What it stands for is written once, in a ``tags`` section of :class:`Tag` entries: a recipe's
(wired from there to the data tools, both eval sections and the listening test), or a standalone
data or eval config's own::

    tags:
      de_hessian: {language: de, description: German with a Hessian accent, accent_label: hessian}
      gsw_zurich: {language: gsw, asr_language: de}   # Whisper has no Swiss German
      en: English as spoken in England                 # a plain string: its description

:func:`language_of` is the only resolver from a tag to its language (the text frontend, CER and
WER, the short probes, the listening test); :func:`asr_language_of` gives Whisper's code from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import ClassVar, Mapping, Union

# Language codes as Whisper and the text frontend write them: ISO 639-1/-3, lower case, for
# num2words optionally with a region (pt_BR).
CODE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


@dataclass
class Tag:
    # The language its texts are written in (ISO 639 code): the text frontend's readings of
    # numbers and symbols, CER/WER, the short probes; "" = the tag's first part (de_hessian -> de).
    language: str = ""
    # What it stands for, in words a listener understands: the listening test's accent question
    # asks "how much does this sound like <description>"; kept in eval/eval.json.
    description: str = ""
    # Whisper's code where it differs from ``language`` (a language Whisper does not know, such
    # as Swiss German gsw -> de); "" = language.
    asr_language: str = ""
    # The label the accent classifier (scorers.accent_model) should give its clips; "" = none.
    accent_label: str = ""
    FROM_STRING: ClassVar[str] = "description"  # `en: English as spoken in England`

    def validate(self) -> list[str]:
        return [f"{key}: {value!r} is not a language code (two or three lower-case letters, "
                f"e.g. de, en, sw, gsw; for num2words with a region: pt_BR)" for key, value in
                (("language", self.language), ("asr_language", self.asr_language))
                if value and not CODE.fullmatch(value)]


Tags = dict[str, Tag]
# tag -> its facts, or its language alone (as a stored text frontend keeps it)
Known = Mapping[str, Union[Tag, str]]


def language_of(tag: str | None, tags: Known | None = None, default: str = "") -> str:
    """The language of ``tag``: its entry's, else ``default`` (one language for every tag), else
    the tag's first part, lower case ('en' from 'en_glasgow' or 'en-GB'; '' for no tag)."""
    entry = (tags or {}).get(tag or "")
    given = entry.language if isinstance(entry, Tag) else entry
    return given or (default or re.split(r"[_\-]", tag or "")[0]).lower()


def asr_language_of(tag: str | None, tags: Known | None = None) -> str | None:
    """The code Whisper is told for ``tag``'s clips (None: no tag, Whisper chooses)."""
    if not tag:
        return None
    entry = (tags or {}).get(tag)
    return (entry.asr_language if isinstance(entry, Tag) else "") or language_of(tag, tags) or None


def languages(tags: Mapping[str, Tag]) -> dict[str, str]:
    """tag -> its language, for every listed tag (a text frontend keeps this map)."""
    return {name: language_of(name, tags) for name in tags if name}


def asr_languages(tags: Mapping[str, Tag]) -> dict[str, str | None]:
    """tag -> the code Whisper is told, for every listed tag."""
    return {name: asr_language_of(name, tags) for name in tags if name}


def only(tags: Mapping[str, Tag], *kept: str) -> Tags:
    """``tags`` with only the facts ``kept``, the others left empty: what a section reads."""
    return {name: replace(t, **{f.name: "" for f in fields(t) if f.name not in kept})
            for name, t in tags.items()}


def accent_labels(tags: Mapping[str, Tag]) -> dict[str, str]:
    """tag -> the label the accent classifier should give, for the tags that name one."""
    return {name: t.accent_label for name, t in tags.items() if t.accent_label}


def facts(names, tags: Mapping[str, Tag]) -> dict[str, dict]:
    """Every tag of ``names`` and ``tags`` with its facts resolved (its language filled in), as
    an eval folder keeps them."""
    out = {}
    for name in sorted({*names, *tags} - {""}):
        t = tags.get(name) or Tag()
        out[name] = {"language": language_of(name, tags), "description": t.description,
                     "asr_language": asr_language_of(name, tags), "accent_label": t.accent_label}
    return out
