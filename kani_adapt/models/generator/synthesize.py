"""Text to speech in one call: prompt -> generate codes -> decode them to waveforms.

The only copy of that path: ``kani-adapt generate``, the recipe's ``sample`` stage, the samples
logged during training and evaluation all call :func:`synthesize` (or :func:`synthesize_ids`
where the text is already tokenized). Rows are generated in batches that never mix speaker-
conditioned and unconditioned prompts; each row is decoded on its own, so a row's audio does not
depend on what it was batched with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from kani_adapt.text import frontend
from kani_adapt import tokens
from kani_adapt.models.generator.checkpoint import model_layout
from kani_adapt.models.generator.generate import SamplingConfig, generate
from kani_adapt.models.generator.tokenizer import encode_text


@dataclass
class Synthesized:
    codes: np.ndarray  # (frames, 4)
    hit_length_cap: bool  # stopped by max_frames, not by end of speech
    audio: np.ndarray | None = None  # float32 waveform at the codec's rate (None: no codec)
    sample_rate: int | None = None
    onset_entropy: float = float("nan")  # derailment score (generate.GeneratedRow)


def synthesize(model, tokenizer, codec, texts: Sequence[str], tag: str | Sequence[str] | None,
               speaker=None, sampling: SamplingConfig = SamplingConfig(),
               batch_size: int | None = None,
               front: frontend.Frontend | None = None) -> list[Synthesized]:
    """Speak ``texts`` (one ``tag`` for all, or one per text) with an optional ``speaker``:
    one 128-d vector for all texts, or one per text (``None`` entries: unconditioned).
    ``codec=None`` returns codes only. Each text is read through the text frontend ``front``,
    by default the one stored with the model (:func:`model_frontend`)."""
    tags = [tag] * len(texts) if tag is None or isinstance(tag, str) else list(tag)
    prompts = text_prompts(model, tokenizer, texts, tags, front)
    return synthesize_ids(model, codec, prompts, speaker, sampling, batch_size)


def model_frontend(model) -> frontend.Frontend:
    """The text frontend a loaded model was trained with (its folder's ``text_frontend.json``,
    read by ``load_checkpoint`` and ``load_adapter``), else the default one."""
    return getattr(model, "text_frontend", None) or frontend.Frontend()


def text_prompts(model, tokenizer, texts: Sequence[str], tags: Sequence[str | None],
                 front: frontend.Frontend | None = None) -> list[list[int]]:
    """The text ids ``synthesize`` feeds the model: each text through the frontend, then the
    tokenizer (the ids training builds for the same row)."""
    front = front or model_frontend(model)
    return [encode_text(tokenizer, front.apply(text, t), t) for text, t in zip(texts, tags)]


def synthesize_ids(model, codec, text_ids: Sequence[list[int]], speaker=None,
                   sampling: SamplingConfig = SamplingConfig(),
                   batch_size: int | None = None) -> list[Synthesized]:
    """:func:`synthesize` for texts already turned into token ids, laid out as the model was
    trained (short texts repeated where its ``text_layout`` says so)."""
    layout = model_layout(model)
    prompts = [tokens.prompt_ids(ids, repeats=layout.repeats(ids)) for ids in text_ids]
    speakers = _per_text(speaker, len(prompts))
    out: list[Synthesized | None] = [None] * len(prompts)
    size = batch_size or max(len(prompts), 1)
    for conditioned in (True, False):
        index = [i for i, s in enumerate(speakers) if (s is not None) == conditioned]
        for start in range(0, len(index), size):
            batch = index[start:start + size]
            spk = (torch.from_numpy(np.stack([np.asarray(speakers[i], dtype=np.float32)
                                              for i in batch])) if conditioned else None)
            for i, row in zip(batch, generate(model, [prompts[i] for i in batch], spk, sampling)):
                out[i] = Synthesized(np.asarray(row.codes).reshape(-1, 4), bool(row.hit_length_cap),
                                     onset_entropy=row.onset_entropy)
    if codec is not None:
        for item in out:
            item.audio, item.sample_rate = decode_one(codec, item.codes), codec.sample_rate
    return out  # type: ignore[return-value]


def _per_text(speaker, count: int) -> list:
    if speaker is None:
        return [None] * count
    if isinstance(speaker, (list, tuple)):
        return list(speaker)
    array = speaker.cpu().numpy() if isinstance(speaker, torch.Tensor) else np.asarray(speaker)
    return [array] * count if array.ndim == 1 else list(array)


def decode_one(codec, codes: np.ndarray) -> np.ndarray:
    """The waveform of one (frames, 4) code array; no frames give no samples."""
    if not len(codes):
        return np.zeros(0, dtype=np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(codes.T[None]).astype(np.int64))
    with torch.inference_mode():
        audio, lengths = codec.decode(batch, torch.tensor([len(codes)]))
    return audio[0, : int(lengths[0])].detach().float().cpu().numpy()
