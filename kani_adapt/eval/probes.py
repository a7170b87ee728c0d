"""The built-in short-prompt probe set: 1-3 word prompts per language, generated in every eval
for each tag of the eval set, in the voice of that tag's first speaker.

Short prompts are where codec-token TTS derails (runaway loops, noise; upstream measured 60-96 %
failures at 6 text tokens or fewer, gepard-train MODEL_GUIDE section 5.3), and eval sets of read
sentences rarely hold any. The probes are scored like every item (failure, CER against the
prompt, onset entropy) but reported apart (``short_probes`` in eval.json and eval.md), so the
figures of the eval set itself stay as they were.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from kani_adapt.eval.evalset import EvalItem
from kani_adapt.text.tags import Tag, language_of

PREFIX = "probe/"  # item ids of probes: probe/<tag>/<k>
PROBES = {
    "de": ("Ja.", "Nein, danke.", "Guten Morgen.", "Bis bald!", "Wie bitte?", "Alles klar."),
    "en": ("Yes.", "No, thanks.", "Good morning.", "See you soon!", "Sorry?", "All right."),
    "sw": ("Ndiyo.", "Hapana, asante.", "Habari za asubuhi.", "Karibu!", "Samahani?", "Sawa."),
}


def is_probe(item_id: str) -> bool:
    return str(item_id).startswith(PREFIX)


def probe_items(items: list[EvalItem], embeddings: dict,
                tags: dict[str, Tag] | None = None) -> tuple[list[EvalItem], list[str]]:
    """Probe items for each tag of ``items`` whose language (from ``tags``) has probes, in the
    voice of the tag's first item (its embedding file or vector, else ``embeddings`` of its
    reference: ``References.embedding``). Returns the probes and the tags left without (no
    probes for their language, or no voice to speak them in)."""
    out, skipped = [], []
    firsts: dict[str, EvalItem] = {}
    for item in items:
        if not item.base:
            firsts.setdefault(item.tag or "", item)
    for tag, first in firsts.items():
        texts = PROBES.get(language_of(tag, tags))
        vector = first.vector
        if first.embedding is None and vector is None and first.reference_key in embeddings:
            vector = np.asarray(embeddings[first.reference_key], dtype=np.float32)
        if not texts or (first.embedding is None and vector is None):
            skipped.append(tag)
            continue
        out += [replace(first, id=f"{PREFIX}{tag or 'untagged'}/{k}", text=text, reference=None,
                        reference_text=None, codes=None, vector=vector)
                for k, text in enumerate(texts)]
    return out, skipped


def summary(df) -> dict:
    """checkpoint -> tag -> {n, failure, cer, onset_entropy} over the probes' utterances."""
    out: dict = {}
    if "item" not in df:
        return out
    probes = df[df["item"].astype(str).map(is_probe)]
    for (name, tag), part in probes.groupby(["checkpoint", "tag"], sort=False):
        out.setdefault(name, {})[tag] = {
            "n": int(len(part)),
            **{m: float(part[m].mean()) for m in ("failure", "cer", "onset_entropy")
               if m in part and part[m].notna().any()}}
    return out
