"""Speaker similarity: cosine between the voice of generated audio and a *different* reference
clip of the same speaker, anchored by a ceiling and a floor.

Embedders: the KaniTTS2 speaker embedder (what the generator is conditioned on; the default) or
a transformers ``WavLMForXVector`` verification model (e.g. ``microsoft/wavlm-base-plus-sv``).
Anchors: the ceiling is the mean cosine between different reference clips of one speaker
(what real recordings of the same voice reach); the floor the mean cosine between references
of different speakers (what an unrelated voice reaches).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Literal, Sequence

import numpy as np

from kani_adapt.batching import length_batches
from kani_adapt.core.devices import resolve
from kani_adapt.audio import all_to_rate
from kani_adapt.scorers import SCORER_RATE

Embedder = Callable[[list[np.ndarray]], np.ndarray]  # 16 kHz clips -> [N, D] unit vectors
Kind = Literal["kani", "wavlm-xvector"]


def load_kani_embedder(spec: str, device: str) -> Embedder:
    """The one place that knows where the KaniTTS2 speaker embedder lives and how it is called."""
    from kani_adapt.models.speaker import embedder

    model = embedder.load(spec, device=device)

    def embed(clips: list[np.ndarray]) -> np.ndarray:
        return model.embed(clips, SCORER_RATE)  # truncates to what the official runtime uses
    return embed


def load_xvector(spec: str, device: str) -> Embedder:
    import torch
    from transformers import AutoFeatureExtractor, WavLMForXVector

    from kani_adapt.core.errors import CheckpointError
    from kani_adapt.core.hub import resolve_folder

    folder = resolve_folder(spec, required=("config.json", "preprocessor_config.json"))
    try:
        extractor = AutoFeatureExtractor.from_pretrained(str(folder))
        model = WavLMForXVector.from_pretrained(str(folder)).to(device).eval()
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{folder}: not a WavLMForXVector checkpoint ({err})") from err

    def embed(clips: list[np.ndarray]) -> np.ndarray:
        inputs = extractor(clips, sampling_rate=SCORER_RATE, return_tensors="pt", padding=True,
                           return_attention_mask=True)
        with torch.no_grad():
            out = model(**{k: v.to(device) for k, v in inputs.items()}).embeddings
        return torch.nn.functional.normalize(out.float(), dim=-1).cpu().numpy()
    return embed


@dataclass(frozen=True)
class Anchors:
    ceiling: float  # same speaker, different reference clips (nan with one clip per speaker)
    floor: float  # different speakers (nan with one speaker)


class SpeakerSimilarity:
    def __init__(self, embedder: Embedder, batch_size: int = 8, name: str = "kani"):
        self.embedder, self.batch_size, self.name = embedder, batch_size, name

    @classmethod
    def load(cls, spec: str, kind: Kind = "kani", device: str = "auto",
             batch_size: int = 8) -> "SpeakerSimilarity":
        device = resolve(device)
        loader = load_kani_embedder if kind == "kani" else load_xvector
        return cls(loader(spec, device), batch_size, kind)

    def embed(self, audios: Sequence[np.ndarray], rate: int) -> np.ndarray:
        """[N, D] unit vectors; NaN rows for empty clips (a generator that stopped at once has
        no voice to compare: its similarity is NaN, its failure is counted elsewhere)."""
        clips = all_to_rate(audios, rate, SCORER_RATE)
        out: list[np.ndarray | None] = [None] * len(clips)
        voiced = [i for i, c in enumerate(clips) if len(c)]
        for batch in length_batches([len(clips[i]) for i in voiced], self.batch_size):
            rows = [voiced[k] for k in batch]
            for i, vec in zip(rows, self.embedder([clips[i] for i in rows])):
                out[i] = vec / max(np.linalg.norm(vec), 1e-12)
        dim = next((len(v) for v in out if v is not None), 1)
        out = [np.full(dim, np.nan, dtype=np.float32) if v is None else v for v in out]
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [N, D] arrays."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=-1)


def anchors(embeddings: np.ndarray, speakers: Sequence[str]) -> Anchors:
    """Mean same-speaker (different clips) and different-speaker cosines of reference clips."""
    same, diff = [], []
    for i, j in combinations(range(len(speakers)), 2):
        (same if speakers[i] == speakers[j] else diff).append(float(cosine(embeddings[i], embeddings[j])))
    return Anchors(ceiling=float(np.mean(same)) if same else float("nan"),
                   floor=float(np.mean(diff)) if diff else float("nan"))
