"""Generated samples for fixed validation prompts, logged to TensorBoard during training.

Without a codec the samples are token statistics and a picture of the codes; with a codec
(``Codec`` protocol) they are decoded to audio and logged with a spectrogram. Samples that hit
the length cap are flagged: runaway audio is a classic fine-tuning failure.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.models.generator.generate import SamplingConfig, generate


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
    prompts = [tokens.prompt_ids(val_set.text_ids[i]) for i in range(len(items))]
    speakers = None
    if items[0].speaker_emb is not None:
        speakers = torch.from_numpy(np.stack([it.speaker_emb for it in items]))
    sampling = SamplingConfig(temperature=0.7, max_new_frames=cfg.trainer.sample_max_frames,
                              seed=cfg.trainer.seed)

    def hook(module) -> None:
        every = cfg.trainer.sample_every
        if every and module.global_step % every:
            return
        model = module.kani
        was_training = model.training
        model.eval()
        try:
            rows = generate(model, prompts, speakers, sampling)
        finally:
            model.train(was_training)
        writer = _tensorboard(module)
        step = module.global_step
        for i, row in enumerate(rows):
            for key, value in sample_stats(row.codes, row.hit_length_cap).items():
                module.log(f"samples/{key}_{i}", value, rank_zero_only=True)
            if writer is None:
                continue
            writer.add_image(f"samples/codes_{i}", codes_image(row.codes), step, dataformats="HWC")
            if codec is not None and len(row.codes):
                log_audio(writer, codec, row.codes, f"samples/audio_{i}", step)

    return hook


def _tensorboard(module):
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in module.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def codes_image(codes: np.ndarray) -> np.ndarray:
    """The codes as an RGB picture: time left to right, one band per codebook."""
    return render(lambda ax: ax.imshow(codes.T if len(codes) else np.zeros((4, 1)),
                                       aspect="auto", interpolation="nearest", cmap="viridis"),
                  "frame", "codebook")


def spectrogram_image(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    def draw(ax):
        ax.specgram(audio + 1e-9, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma")
    return render(draw, "seconds", "Hz")


def log_audio(writer, codec, codes: np.ndarray, tag: str, step: int) -> None:
    frames = torch.tensor([len(codes)])
    audio, lengths = codec.decode(torch.from_numpy(codes.T[None].astype(np.int64)), frames)
    wav = audio[0, : int(lengths[0])].detach().float().cpu().numpy()
    writer.add_audio(tag, wav[None], step, sample_rate=codec.sample_rate)
    writer.add_image(tag + "_spectrogram", spectrogram_image(wav, codec.sample_rate), step,
                     dataformats="HWC")


def render(draw, xlabel: str, ylabel: str) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.5), dpi=80)
    draw(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return plt.imread(buf)[..., :3]
