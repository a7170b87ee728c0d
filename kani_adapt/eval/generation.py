"""Generation and codec decoding for evaluation: the only module that calls the generator."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kani_adapt.eval.config import EvalConfig


@dataclass
class Generated:
    codes: np.ndarray  # (frames, 4)
    hit_length_cap: bool
    prompt_tokens: int = 0  # text tokens of the normalised text (no tag, no BOS)
    onset_entropy: float = float("nan")  # derailment score: flat and high when derailed


_MODELS: dict = {}  # one loaded generator at a time (checkpoints are evaluated one after another)


def _load(checkpoint: str, cfg: EvalConfig, device: str):
    import torch

    from kani_adapt.models.generator.checkpoint import load_checkpoint

    if checkpoint not in _MODELS:
        _MODELS.clear()
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[cfg.dtype]
        generator = load_checkpoint(checkpoint, dtype=dtype)
        generator.model.to(device).eval()
        _MODELS[checkpoint] = generator
    return _MODELS[checkpoint]


def generate_items(checkpoint: str, items, speakers: list, cfg: EvalConfig, device: str,
                   seed: int) -> list[Generated]:
    """Codes for every item (``cfg.sampling`` with ``seed``); batches never mix items with and
    without a speaker embedding."""
    from kani_adapt.models.generator.synthesize import synthesize

    generator = _load(checkpoint, cfg, device)
    rows = synthesize(generator, None, [it.text for it in items], [it.tag for it in items],
                      list(speakers), replace(cfg.sampling, seed=seed), batch_size=cfg.batch_size)
    front, tokenizer = generator.reads_with, generator.tokenizer
    lengths = [len(tokenizer(front.apply(it.text, it.tag), add_special_tokens=False)["input_ids"])
               for it in items]
    return [Generated(row.codes, row.hit_length_cap, n, row.onset_entropy)
            for row, n in zip(rows, lengths)]


def encode(codec, audios: list[np.ndarray]) -> list[np.ndarray]:
    """Codes (frames, 4) of each clip (at the codec's rate), one clip at a time."""
    import torch

    out = []
    for audio in audios:
        codes, frames = codec.encode(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
        out.append(codes[0, :, :int(frames[0])].T.numpy())
    return out


def decode(codec, codes: list[np.ndarray]) -> list[np.ndarray]:
    """Audio of each (frames, 4) code array; empty generations give empty audio."""
    import torch

    out = [np.zeros(0, dtype=np.float32)] * len(codes)
    index = [i for i, c in enumerate(codes) if len(c)]
    if not index:
        return out
    width = max(len(codes[i]) for i in index)
    batch = torch.zeros(len(index), codec.num_codebooks, width, dtype=torch.long)
    for row, i in enumerate(index):
        batch[row, :, :len(codes[i])] = torch.from_numpy(np.asarray(codes[i]).T.astype(np.int64))
    frames = torch.tensor([len(codes[i]) for i in index])
    audio, lengths = codec.decode(batch, frames)
    for row, i in enumerate(index):
        out[i] = audio[row, :int(lengths[row])].numpy().astype(np.float32)
    return out
