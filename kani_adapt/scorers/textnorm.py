"""Text normalisation hooks per language (shared by the data tools and the scorers), and the
tokenizer coverage report.

A hook is a function ``str -> str`` registered for a language code (``@register("de")``); hooks
for "*" run for every language. Numbers become words where num2words supports the language.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Callable

HOOKS: dict[str, list[Callable[[str], str]]] = {}


def register(language: str):
    def add(func):
        HOOKS.setdefault(language, []).append(func)
        return func
    return add


def language_of(tag: str, configured: str = "") -> str:
    """'en' from 'en_glasgow' or 'en-GB'; the configured language wins when set."""
    return (configured or re.split(r"[_\-]", tag or "")[0]).lower()


@register("*")
def unicode_nfc(text: str) -> str:
    # Composed and decomposed accents look identical but tokenize differently.
    return unicodedata.normalize("NFC", text)


def numbers_to_words(text: str, language: str) -> str:
    """Spell out digits where num2words knows the language; otherwise leave them unchanged."""
    if not language or not re.search(r"\d", text):
        return text
    try:
        from num2words import num2words
        num2words(1, lang=language)
    except (ImportError, NotImplementedError, KeyError):
        return text

    def spell(match: re.Match) -> str:
        return num2words(int(match.group()), lang=language)
    return re.sub(r"\d+", spell, text)


def normalise(text: str, language: str, numbers: bool = True) -> str:
    for hook in HOOKS.get("*", []) + HOOKS.get(language, []):
        text = hook(text)
    if numbers:
        text = numbers_to_words(text, language)
    return " ".join(text.split())


def _char_tokens(tokenizer, char: str) -> list[str]:
    ids = tokenizer(char, add_special_tokens=False)["input_ids"]
    return tokenizer.convert_ids_to_tokens(ids)


def coverage(texts: list[str], tokenizer) -> dict:
    """Which characters the generator's tokenizer knows, and how many tokens text costs.

    A character is *unknown* when it maps to the unk token, *byte-fallback* when it is spelled
    with raw byte tokens (``<0xE3>`` pieces, or a byte-level BPE splitting it into its bytes).
    """
    chars = Counter(c for t in texts for c in t if not c.isspace())
    unk = getattr(tokenizer, "unk_token", None)
    unknown, fallback = {}, {}
    for char, count in chars.items():
        pieces = _char_tokens(tokenizer, char)
        if unk is not None and unk in pieces:
            unknown[char] = count
        elif any(re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", p) for p in pieces) or \
                (len(char.encode("utf-8")) > 1 and len(pieces) > 1):
            fallback[char] = count
    n_chars = sum(len(t) for t in texts)
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    total = sum(chars.values()) or 1
    return {
        "characters": n_chars,
        "tokens": n_tokens,
        "tokens_per_character": round(n_tokens / n_chars, 4) if n_chars else 0.0,
        "distinct_characters": len(chars),
        "unknown": dict(sorted(unknown.items(), key=lambda kv: -kv[1])),
        "byte_fallback": dict(sorted(fallback.items(), key=lambda kv: -kv[1])),
        "unknown_share": round(sum(unknown.values()) / total, 6),
        "byte_fallback_share": round(sum(fallback.values()) / total, 6),
    }


def load_tokenizer(path_or_id: str):
    from transformers import AutoTokenizer

    from kani_adapt.hub import resolve_folder

    folder = resolve_folder(path_or_id, required=("tokenizer_config.json",))
    return AutoTokenizer.from_pretrained(str(folder))
