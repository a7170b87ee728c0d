"""The scorers' view of the text frontend (:mod:`kani_adapt.text.frontend`, the one normaliser), and
the tokenizer coverage report.
"""
from __future__ import annotations

import re
from collections import Counter

from kani_adapt.text import frontend


def normalise(text: str, language: str, numbers: bool = True) -> str:
    """The text frontend's reading (:func:`kani_adapt.text.frontend.normalize`): scoring compares
    texts as the model was given them."""
    return frontend.normalize(text, language, numbers=numbers)


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

    from kani_adapt.core.hub import resolve_folder

    folder = resolve_folder(path_or_id, required=("tokenizer_config.json",))
    return AutoTokenizer.from_pretrained(str(folder))
