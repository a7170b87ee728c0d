"""Synthetic tokenized datasets (:mod:`kani_adapt.dataset`'s rows), for demos, tests and benchmarks.

Codes follow the text (one frame per UTF-8 byte, spread over the codebooks), so a model can learn
something from them; speakers get fixed random unit embeddings.
"""
from __future__ import annotations

import numpy as np

from kani_adapt import dataset, tokens

SENTENCES = {
    "de": ["Guten Morgen, wie geht es dir heute?", "Das Wetter in Frankfurt ist schön.",
           "Ich trinke gern einen Apfelwein.", "Der Zug nach Darmstadt fährt gleich ab."],
    "en_glasgow": ["Are you coming down the road later?", "It is a braw day for a walk.",
                   "We are going to the shops.", "Mind how you go now."],
}


def synthetic_rows(n_speakers: int = 3, per_speaker: int = 4, seed: int = 0,
                   frames_range: tuple[int, int] | None = None) -> list[dict]:
    rng = np.random.default_rng(seed)
    tags = sorted(SENTENCES)
    rows = []
    for s in range(n_speakers):
        tag = tags[s % len(tags)]
        emb = rng.standard_normal(128).astype(np.float32)
        emb /= np.linalg.norm(emb)
        for u in range(per_speaker):
            text = SENTENCES[tag][u % len(SENTENCES[tag])]
            codes = text_codes(text, rng, frames_range)
            rows.append(dataset.make_row(text, tag, codes, f"spk{s}", emb, emb,
                                         len(codes) / tokens.FRAMES_PER_SECOND,
                                         f"synthetic/spk{s}/{u}"))
    return rows


def text_codes(text: str, rng: np.random.Generator, frames_range=None) -> np.ndarray:
    base = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    if frames_range is not None:
        n = int(rng.integers(*frames_range))
        base = np.resize(base, n)
    frames = np.stack([(base * (c + 3) + c * 1000) % tokens.CODEBOOK_SIZE for c in range(4)], 1)
    return (frames + rng.integers(0, 2, size=frames.shape)) % tokens.CODEBOOK_SIZE


def synthetic_dataset(path, **kwargs):
    """Write a synthetic dataset with ``save_to_disk`` and return its folder."""
    from kani_adapt.core.atomic import write_folder

    table = dataset.to_table(synthetic_rows(**kwargs))
    write_folder(path, lambda tmp: table.save_to_disk(str(tmp)))
    return path
