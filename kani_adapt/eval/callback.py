"""Scores generated speech at each validation and logs ``eval/<metric>`` (usable by checkpoint
monitors and early stopping) plus a few clips as TensorBoard audio.

The items are the first ``prompts`` of the validation set (held-out speakers), generated with
the same seed each time; DNSMOS and failures by default, CER and similarity when an ASR and a
speaker embedder are configured. With ``base_prompts``, held-out rows of the replay set (the
base language) are scored too, as ``eval/base_<metric>``: the forgetting line. With
``stop_on_forgetting``, that line is also measured before the first step, and the run stops
once the base language has got worse than that by more than the tolerance.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from kani_adapt.eval.config import TrainingEvalConfig
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.tokens import TextLayout

log = logging.getLogger("kani_adapt.train")
STOPPED = "stopped.json"  # in the run folder: why and when a run stopped early
BASE = "base_"  # metric prefix of the base-language rows


class PromptSet:
    """The first ``n`` items of a tokenized set, as prompts with their texts and voices."""

    def __init__(self, dataset, n: int):
        n = min(n, len(dataset))
        items = [dataset[i] for i in range(n)]
        self.prompts = [list(dataset.text_ids[i]) for i in range(n)]
        self.texts = list(dataset.texts[:n])
        self.tags = [it.tag for it in items]
        self.speaker_names = [it.speaker for it in items]
        embs = [it.speaker_emb for it in items]
        self.speakers = torch.from_numpy(np.stack(embs)) if embs and embs[0] is not None else None

    def __len__(self) -> int:
        return len(self.prompts)


class EvalCallback(L.Callback):
    def __init__(self, cfg: TrainingEvalConfig, val_set, codec, base_set=None, run_dir=None, *,
                 sampling: SamplingConfig, layout: TextLayout = TextLayout()):
        self.cfg, self.codec = cfg, codec
        self.sampling = sampling  # the training run's (its validation samples use it too)
        self.layout = layout  # the run's prompt layout: scored speech is prompted as trained
        self.sets: dict[str, PromptSet] = {}
        if cfg.prompts > 0 and val_set is not None and len(val_set):
            self.sets[""] = PromptSet(val_set, cfg.prompts)
        if cfg.base_prompts > 0 and base_set is not None and len(base_set):
            self.sets[BASE] = PromptSet(base_set, cfg.base_prompts)
        self.run_dir = Path(run_dir) if run_dir else None
        self.baseline: float | None = None  # the watched base metric before training
        self.strikes = 0  # validations in a row past the tolerance
        self.stopped: dict | None = None
        self._scorers = None

    # Kept in checkpoints (plain numbers: they load with weights_only=True), so a resumed run
    # compares against the weights it started from, not against its own resumed state.
    def state_dict(self) -> dict:
        return {"baseline": self.baseline, "strikes": self.strikes}

    def load_state_dict(self, state: dict) -> None:
        self.baseline, self.strikes = state.get("baseline"), int(state.get("strikes", 0))

    def scorers(self, device: str):
        if self._scorers is None:
            from kani_adapt.scorers.registry import Scorers
            self._scorers = Scorers(self.cfg.scorers, device, self.cfg.tags)
        return self._scorers

    def evaluate(self, model, which: str = "") -> tuple[dict[str, float], list[np.ndarray]]:
        """Mean of every metric over the items of one set, and the decoded clips."""
        from kani_adapt.models.generator.bundle import Generator
        from kani_adapt.scorers.registry import Clip
        from kani_adapt.models.generator.synthesize import synthesize_ids

        items = self.sets[which]
        was_training = model.training
        model.eval()
        try:
            rows = synthesize_ids(Generator(model, None, text_layout=self.layout), self.codec,
                                  items.prompts, items.speakers, self.sampling)
        finally:
            model.train(was_training)
        audios = [r.audio for r in rows]
        clips = [Clip(audio=r.audio, text=t, speaker=s, tag=g, codes=r.codes,
                      hit_length_cap=r.hit_length_cap)
                 for r, t, s, g in zip(rows, items.texts, items.speaker_names, items.tags)]
        scorers = self.scorers(str(next(model.parameters()).device))
        scored = scorers.score(clips, self.codec.sample_rate)
        means = {}
        for metric in scorers.names():
            values = [r[metric] for r in scored if metric in r and not math.isnan(r[metric])]
            if values:
                means[metric] = float(np.mean(values))
        return means, audios

    @property
    def watching(self) -> bool:
        return bool(self.cfg.stop_on_forgetting) and BASE in self.sets

    def on_train_start(self, trainer, pl_module) -> None:
        if self.watching and self.baseline is None and trainer.is_global_zero:
            metric = self.cfg.stop_on_forgetting
            self.baseline = self.evaluate(pl_module.kani, BASE)[0].get(metric)
            if self.baseline is None:
                log.warning("eval: base-language %s could not be measured before training; "
                            "stop_on_forgetting is off for this run", metric)
            else:
                log.info("eval: base-language %s before training: %.4f (the run stops if it gets "
                         "worse by more than %g)", metric, self.baseline, self.cfg.forgetting_tolerance)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self.sets:
            return
        stop = False
        if trainer.is_global_zero:
            for prefix in self.sets:
                means, audios = self.evaluate(pl_module.kani, prefix)
                for metric, value in means.items():
                    pl_module.log(f"eval/{prefix}{metric}", value, rank_zero_only=True)
                self._log_audio(trainer, pl_module, prefix, audios)
                if prefix == BASE and self.watching:
                    stop = self.forgetting(means.get(self.cfg.stop_on_forgetting), trainer.global_step)
        if self.watching:
            # every rank stops at the same step; rank zero alone has measured
            if trainer.world_size > 1:
                stop = bool(trainer.strategy.broadcast(stop, src=0))
            if stop:
                trainer.should_stop = True

    def forgetting(self, value: float | None, step: int) -> bool:
        """Whether the run should stop now, given the watched base metric at ``step``."""
        from kani_adapt.scorers.registry import higher_is_better

        metric, tolerance = self.cfg.stop_on_forgetting, self.cfg.forgetting_tolerance
        if value is None or self.baseline is None:
            return False
        worse = (self.baseline - value) if higher_is_better()[metric] else (value - self.baseline)
        self.strikes = self.strikes + 1 if worse > tolerance else 0
        if not self.strikes:
            return False
        patience = self.cfg.forgetting_patience
        log.info("eval: base-language %s %.4f, %.4f worse than before training (%g allowed; %d of %d)",
                 metric, value, worse, tolerance, self.strikes, patience)
        if self.strikes < patience:
            return False
        self.stopped = {"step": step, "reason": "forgetting", "metric": metric,
                        "before": self.baseline, "now": value, "tolerance": tolerance,
                        "patience": patience}
        log.warning("stopping at step %d: the base language got worse (%s %.4f -> %.4f); the "
                    "last checkpoint is kept", step, metric, self.baseline, value)
        if self.run_dir is not None:
            from kani_adapt.core import atomic
            atomic.write_text(self.run_dir / STOPPED, json.dumps(self.stopped, indent=2) + "\n")
        return True

    def _log_audio(self, trainer, pl_module, prefix: str, audios: list[np.ndarray]) -> None:
        from kani_adapt.trainer.lightning import tensorboard

        writer = tensorboard(pl_module)
        if writer is None:
            return
        for i, audio in enumerate(audios[:self.cfg.audio_clips]):
            if audio.size:
                writer.add_audio(f"eval/{prefix}audio_{i}", np.clip(audio, -1, 1)[None],
                                 trainer.global_step, sample_rate=self.codec.sample_rate)


def eval_callbacks(cfg: TrainingEvalConfig, val_set, codec, checkpoint_dir=None, base_set=None,
                   run_dir=None, *, sampling: SamplingConfig,
                   layout: TextLayout = TextLayout()) -> list:
    """The callback when configured and possible (items to score and a codec to decode them),
    and with ``monitor`` a checkpoint keeper of the best runs by that eval metric."""
    from kani_adapt.core.errors import ConfigError
    from kani_adapt.scorers.registry import higher_is_better, metric_names

    has_val = cfg.prompts > 0 and val_set is not None and len(val_set)
    has_base = cfg.base_prompts > 0 and base_set is not None and len(base_set)
    if cfg.monitor and not has_val:
        raise ConfigError("eval.monitor needs eval.prompts > 0 and held-out validation speakers")
    if cfg.base_prompts > 0 and not has_base:
        raise ConfigError("eval.base_prompts > 0 needs data.replay with held-out rows (a "
                          "base-language dataset of 10 rows or more)")
    watchable = metric_names(cfg.scorers)  # what each validation measures per clip
    for key, metric in (("stop_on_forgetting", cfg.stop_on_forgetting), ("monitor", cfg.monitor)):
        if metric and metric not in watchable:
            what = "an eval metric" if metric not in higher_is_better() else \
                "a metric the configured scorers give at each validation"
            raise ConfigError(f"eval.{key}={metric!r} is not {what}; choose from "
                              f"{', '.join(watchable)} (cer and wer need eval.scorers.asr)")
    if not (has_val or has_base):
        return []
    if codec is None:
        raise ConfigError("eval.prompts > 0 needs codec=... (a NanoCodec to decode the speech it scores)")
    callbacks: list = [EvalCallback(cfg, val_set, codec, base_set, run_dir, sampling=sampling,
                                    layout=layout)]
    if cfg.monitor:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(
            dirpath=checkpoint_dir, filename=f"best-{{step:07d}}-{cfg.monitor}{{eval/{cfg.monitor}:.4f}}",
            monitor=f"eval/{cfg.monitor}", mode="max" if higher_is_better()[cfg.monitor] else "min",
            save_top_k=cfg.keep_best, auto_insert_metric_name=False, save_last=False))
    return callbacks


def stopped_early(run_dir: Path) -> dict | None:
    """Why a run stopped before max_steps (``stopped.json``), or None."""
    path = Path(run_dir) / STOPPED
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
