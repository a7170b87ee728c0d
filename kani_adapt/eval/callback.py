"""Scores generated speech at each validation and logs ``eval/<metric>`` (usable by checkpoint
monitors and early stopping) plus a few clips as TensorBoard audio.

The items are the first ``prompts`` of the validation set (held-out speakers), generated with
the same seed each time; DNSMOS and failures by default, CER and similarity when an ASR and a
speaker embedder are configured.
"""
from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch

from kani_adapt.eval.config import TrainingEvalConfig


class EvalCallback(L.Callback):
    def __init__(self, cfg: TrainingEvalConfig, val_set, codec):
        self.cfg, self.codec = cfg, codec
        n = min(cfg.prompts, len(val_set))
        rows = [val_set.table[val_set.rows[i]] for i in range(n)]
        items = [val_set[i] for i in range(n)]
        self.prompts = [list(val_set.text_ids[i]) for i in range(n)]
        self.texts = [str(r["text"]) for r in rows]
        self.tags = [it.tag for it in items]
        self.speakers_names = [it.speaker for it in items]
        embs = [it.speaker_emb for it in items]
        self.speakers = torch.from_numpy(np.stack(embs)) if embs and embs[0] is not None else None
        self._scorers = None

    def scorers(self, device: str):
        if self._scorers is None:
            from kani_adapt.eval.scoring import Scorers
            self._scorers = Scorers(self.cfg.scorers, device)
        return self._scorers

    def evaluate(self, model) -> tuple[dict[str, float], list[np.ndarray]]:
        """Mean of every metric over the items, and the decoded clips."""
        from kani_adapt import tokens
        from kani_adapt.eval.generation import decode
        from kani_adapt.eval.scoring import Clip
        from kani_adapt.models.generator.generate import SamplingConfig, generate

        sampling = SamplingConfig(temperature=self.cfg.temperature, max_new_frames=self.cfg.max_frames,
                                  seed=self.cfg.seed)
        was_training = model.training
        model.eval()
        try:
            rows = generate(model, [tokens.prompt_ids(p) for p in self.prompts], self.speakers, sampling)
        finally:
            model.train(was_training)
        codes = [np.asarray(r.codes).reshape(-1, 4) for r in rows]
        audios = decode(self.codec, codes)
        clips = [Clip(audio=a, text=t, speaker=s, tag=g, codes=c, hit_length_cap=r.hit_length_cap)
                 for a, t, s, g, c, r in zip(audios, self.texts, self.speakers_names, self.tags, codes, rows)]
        scorers = self.scorers(str(next(model.parameters()).device))
        scored = scorers.score(clips, self.codec.sample_rate)
        means = {}
        for metric in scorers.names():
            values = [r[metric] for r in scored if metric in r and not math.isnan(r[metric])]
            if values:
                means[metric] = float(np.mean(values))
        return means, audios

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self.prompts:
            return
        if not trainer.is_global_zero:
            return
        means, audios = self.evaluate(pl_module.kani)
        for metric, value in means.items():
            pl_module.log(f"eval/{metric}", value, rank_zero_only=True)
        from kani_adapt.training.samples import _tensorboard

        writer = _tensorboard(pl_module)
        if writer is not None:
            for i, audio in enumerate(audios[:self.cfg.audio_clips]):
                if audio.size:
                    writer.add_audio(f"eval/audio_{i}", np.clip(audio, -1, 1)[None], trainer.global_step,
                                     sample_rate=self.codec.sample_rate)


def eval_callbacks(cfg: TrainingEvalConfig, val_set, codec, checkpoint_dir=None) -> list:
    """The callback when configured and possible (a validation set and a codec to decode), and
    with ``monitor`` a checkpoint keeper of the best runs by that eval metric."""
    from kani_adapt.errors import ConfigError
    from kani_adapt.eval.scoring import HIGHER_IS_BETTER

    if cfg.prompts < 1 or val_set is None or not len(val_set):
        if cfg.monitor:
            raise ConfigError("eval.monitor needs eval.prompts > 0 and held-out validation speakers")
        return []
    if codec is None:
        raise ConfigError("eval.prompts > 0 needs codec=... (a NanoCodec to decode the speech it scores)")
    callbacks: list = [EvalCallback(cfg, val_set, codec)]
    if cfg.monitor:
        if cfg.monitor not in HIGHER_IS_BETTER:
            raise ConfigError(f"eval.monitor={cfg.monitor!r} is not an eval metric; choose from "
                              f"{', '.join(sorted(HIGHER_IS_BETTER))}")
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(
            dirpath=checkpoint_dir, filename=f"best-{{step:07d}}-{cfg.monitor}{{eval/{cfg.monitor}:.4f}}",
            monitor=f"eval/{cfg.monitor}", mode="max" if HIGHER_IS_BETTER[cfg.monitor] else "min",
            save_top_k=cfg.keep_best, auto_insert_metric_name=False, save_last=False))
    return callbacks
