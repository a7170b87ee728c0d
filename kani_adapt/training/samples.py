"""Generated samples for fixed validation prompts, logged to TensorBoard during training.

Without a codec the samples are token statistics and a picture of the codes; with a codec
(``Codec`` protocol) they are decoded to audio and logged with a spectrogram. Samples that hit
the length cap are flagged: runaway audio is a classic fine-tuning failure.
"""
from __future__ import annotations

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.pages.plots import render, spectrogram_image
from kani_adapt.trainer.lightning import tensorboard
from kani_adapt.models.generator.synthesize import synthesize_ids


def sample_stats(codes: np.ndarray, hit_cap: bool) -> dict[str, float]:
    frames = len(codes)
    distinct = len({tuple(f) for f in codes.tolist()}) / frames if frames else 0.0
    return {"seconds": frames / tokens.FRAMES_PER_SECOND, "hit_length_cap": float(hit_cap),
            "distinct_frame_ratio": distinct}


def make_sample_hook(cfg, val_set, codec=None):
    """A callable(module) that generates and logs samples; None when there is nothing to do."""
    if val_set is None or not len(val_set) or cfg.trainer.sample_prompts < 1:
        return None
    items = [val_set[i] for i in range(min(cfg.trainer.sample_prompts, len(val_set)))]
    text_ids = [val_set.text_ids[i] for i in range(len(items))]
    speakers = None
    if items[0].speaker_emb is not None:
        speakers = torch.from_numpy(np.stack([it.speaker_emb for it in items]))

    def hook(module) -> None:
        every = cfg.trainer.sample_every
        if every and module.global_step % every:
            return
        model = module.kani
        was_training = model.training
        model.eval()
        writer = tensorboard(module)
        try:  # audio only where it can be logged
            rows = synthesize_ids(model, codec if writer is not None else None, text_ids, speakers,
                                  cfg.sampling)
        finally:
            model.train(was_training)
        step = module.global_step
        for i, row in enumerate(rows):
            for key, value in sample_stats(row.codes, row.hit_length_cap).items():
                module.log(f"samples/{key}_{i}", value, rank_zero_only=True)
            if writer is None:
                continue
            writer.add_image(f"samples/codes_{i}", codes_image(row.codes), step, dataformats="HWC")
            if row.audio is not None and len(row.codes):
                log_audio(writer, row.audio, row.sample_rate, f"samples/audio_{i}", step)

    return hook


def codes_image(codes: np.ndarray) -> np.ndarray:
    """The codes as an RGB picture: time left to right, one band per codebook."""
    return render(lambda ax: ax.imshow(codes.T if len(codes) else np.zeros((4, 1)),
                                       aspect="auto", interpolation="nearest", cmap="viridis"),
                  "frame", "codebook")


def log_audio(writer, wav: np.ndarray, sample_rate: int, tag: str, step: int) -> None:
    writer.add_audio(tag, wav[None], step, sample_rate=sample_rate)
    writer.add_image(tag + "_spectrogram", spectrogram_image(wav, sample_rate), step,
                     dataformats="HWC")
