"""Tokenizer fertility, Step 0 of a new language: how many text tokens the generator's tokenizer
spends on the dataset's texts, per tag, beside English and German with the same tokenizer.

Figures per tag: tokens per word, tokens per character, and the byte-fallback share (tokens that
are a piece of a character's UTF-8 bytes, not a character or more: ``<0xE1>`` pieces, or a
byte-level BPE token that decodes to an incomplete character). Texts go through the text
frontend first (:mod:`kani_adapt.text.frontend`), as training reads them.

The gate (:func:`gate`) stops LoRA training when a tag's texts fall back to bytes:

- ``byte_fallback_share`` above ``max_byte_fallback`` (default 0.10). Below it, bytes are rare
  characters (an accent here and there); above it, whole words are spelled in bytes: the
  script is not in the vocabulary. LoRA on a frozen base leaves the embedding table alone, so
  it cannot give those byte sequences meaning cheaply, and every second of speech costs many
  more text positions than the base language.
- tokens per word more than ``max_fertility_ratio`` (default 2.0) times the denser of the
  English and German references: a text that long reaches the model's attention as noise, and
  short prompts (already the weak point) turn into long byte strings.

What to do then: continued pretraining with a larger budget (all weights, the embeddings
included), or a tokenizer extension, which kani-adapt does not do yet. Pure functions: the
filter stage, ``check`` and training call them with their own texts and tokenizer.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from kani_adapt.text import frontend

REFERENCE = {  # everyday sentences, the same for every tokenizer
    "en": ["The bus to the city centre leaves in ten minutes.",
           "Could you tell me where the nearest pharmacy is?",
           "We are going to visit my grandmother on Sunday afternoon.",
           "The weather was lovely, so we had lunch in the garden.",
           "Please turn the music down a little, the baby is sleeping."],
    "de": ["Der Bus in die Innenstadt fährt in zehn Minuten ab.",
           "Können Sie mir sagen, wo die nächste Apotheke ist?",
           "Wir besuchen am Sonntagnachmittag meine Großmutter.",
           "Das Wetter war schön, also haben wir im Garten gegessen.",
           "Mach die Musik bitte etwas leiser, das Baby schläft."],
}
MAX_BYTE_FALLBACK = 0.10
MAX_FERTILITY_RATIO = 2.0
NO_SPACE = {"zh", "ja", "th", "lo", "km", "my", "bo"}  # words are not space-separated


@dataclass(frozen=True)
class Figures:
    texts: int
    words: int
    chars: int
    tokens: int
    byte_tokens: int

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars if self.chars else 0.0

    @property
    def byte_fallback_share(self) -> float:
        return self.byte_tokens / self.tokens if self.tokens else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "tokens_per_word": round(self.tokens_per_word, 4),
                "tokens_per_char": round(self.tokens_per_char, 4),
                "byte_fallback_share": round(self.byte_fallback_share, 4)}


def _is_byte_piece(token: str, text: str) -> bool:
    return bool(re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", token)) or "\ufffd" in text


def measure(texts: list[str], tokenizer, language: str = "") -> Figures:
    """Fertility of ``texts`` (already through the frontend) with ``tokenizer``."""
    words = chars = count = pieces = 0
    cache: dict[int, bool] = {}
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        count += len(ids)
        for i in ids:
            if i not in cache:
                cache[i] = _is_byte_piece(tokenizer.convert_ids_to_tokens(i), tokenizer.decode([i]))
            pieces += cache[i]
        chars += len(text.replace(" ", ""))
        words += len(text.replace(" ", "")) if language in NO_SPACE else len(text.split())
    return Figures(len(texts), words, chars, count, pieces)


def report(texts_by_tag: dict[str, list[str]], tokenizer,
           front: frontend.Frontend | None = None) -> dict:
    """{"tags": {tag: figures}, "reference": {"en": ..., "de": ...}} as plain numbers."""
    front = front or frontend.Frontend()
    tags = {}
    for tag, texts in sorted(texts_by_tag.items()):
        lang = front.language_for(tag)
        tags[tag] = measure([front.apply(t, tag) for t in texts], tokenizer, lang).as_dict()
    reference = {lang: measure(texts, tokenizer, lang).as_dict() for lang, texts in REFERENCE.items()}
    return {"tags": tags, "reference": reference,
            "thresholds": {"max_byte_fallback": MAX_BYTE_FALLBACK,
                           "max_fertility_ratio": MAX_FERTILITY_RATIO}}


def gate(figures: dict, max_byte_fallback: float = MAX_BYTE_FALLBACK,
         max_fertility_ratio: float = MAX_FERTILITY_RATIO, keys: str = "data.") -> list[str]:
    """One line per tag whose texts the tokenizer spells in bytes or spends too many tokens on
    (``figures`` is :func:`report`'s result); empty when LoRA on a frozen base can work. The
    advice names the thresholds under ``keys``: ``data.`` in a training config,
    ``generator.data.`` in a recipe."""
    ref = max((r["tokens_per_word"] for r in figures["reference"].values()), default=0.0)
    mode = f"{keys.removesuffix('data.')}mode"  # the data section's neighbour
    problems = []
    for tag, f in figures["tags"].items():
        why = []
        if max_byte_fallback and f["byte_fallback_share"] > max_byte_fallback:
            why.append(f"{f['byte_fallback_share']:.0%} of its tokens are byte pieces "
                       f"(> {max_byte_fallback:.0%})")
        if max_fertility_ratio and ref and f["tokens_per_word"] > max_fertility_ratio * ref:
            why.append(f"{f['tokens_per_word']:.2f} tokens per word, more than "
                       f"{max_fertility_ratio:g} x the {ref:.2f} of English/German")
        if why:
            problems.append(
                f"tag {tag}: the tokenizer falls back to bytes on this script ({'; '.join(why)}): "
                "LoRA on a frozen base cannot learn it cheaply. Use continued pretraining with a "
                f"larger budget ({mode}=full, e.g. recipes/swahili/continue_pretrain.yaml),"
                " or extend the tokenizer (kani-adapt does not do that yet); to train anyway, set "
                f"{keys}max_byte_fallback=0 {keys}max_fertility_ratio=0")
    return problems


def lines(figures: dict) -> list[str]:
    """The figures as report lines, the references first."""
    out = []
    for group in ("reference", "tags"):
        for name, f in figures[group].items():
            label = f"{'reference ' if group == 'reference' else 'tag '}{name}"
            out.append(f"{label}: {f['tokens_per_word']:.2f} tokens/word, "
                       f"{f['tokens_per_char']:.2f} tokens/char, "
                       f"{f['byte_fallback_share']:.1%} byte-fallback tokens ({f['texts']} texts)")
    return out
