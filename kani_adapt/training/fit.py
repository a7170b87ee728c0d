"""`train(cfg)`: build the run, the Lightning trainer, fit (resuming if possible), finish."""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from kani_adapt.training import run as runs
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.data import GeneratorData
from kani_adapt.training.module import GeneratorModule
from kani_adapt.training.samples import make_sample_hook


def train(cfg: TrainConfig, callbacks: tuple = ()) -> dict:
    run_dir, resume_from = runs.prepare_run_dir(cfg)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    model, tokenizer = runs.build_model(cfg)
    data = GeneratorData(cfg, tokenizer)
    data.setup("fit")
    module = GeneratorModule(cfg, model)
    codec = _codec(cfg)
    module.sample_hook = make_sample_hook(cfg, data.val_set, codec=codec)
    from kani_adapt.eval.callback import eval_callbacks

    callbacks = (*callbacks, *eval_callbacks(cfg.eval, data.val_set, codec, run_dir / "checkpoints"))
    trainer = build_trainer(cfg, run_dir, callbacks)
    if trainer.is_global_zero:
        runs.save_base(model, tokenizer, run_dir)
        (run_dir / "data_stats.json").write_text(json.dumps(data.stats, indent=2) + "\n")
    trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    trainer.save_checkpoint(run_dir / "checkpoints" / runs.LAST)
    digest = runs.param_digest(module.net)
    (run_dir / f"param_digest_rank{trainer.global_rank}.txt").write_text(digest + "\n")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    summary = {"steps": trainer.global_step, "metrics": metrics, "run_dir": str(run_dir)}
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _codec(cfg: TrainConfig):
    """The codec that decodes validation samples to audio (None: token statistics only)."""
    if not cfg.codec:
        return None
    from kani_adapt.codec.nanocodec import load_codec

    return load_codec(cfg.codec)


def build_trainer(cfg: TrainConfig, run_dir: Path, callbacks: tuple = ()) -> L.Trainer:
    t = cfg.trainer
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="step-{step:07d}",
        every_n_train_steps=t.ckpt_every, save_top_k=t.keep_checkpoints, monitor="step",
        mode="max", save_last=True, auto_insert_metric_name=False,
    )
    return L.Trainer(
        default_root_dir=run_dir,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        precision=t.precision,
        # A resumed run appends TensorBoard events; CSV files are per attempt because
        # Lightning's CSV logger would delete the previous attempt's file.
        logger=[TensorBoardLogger(run_dir, name="tb", version=""),
                CSVLogger(run_dir, name="csv", version=f"attempt{_attempt(run_dir)}")],
        callbacks=[checkpoints, LearningRateMonitor(logging_interval="step"), *callbacks],
        val_check_interval=min(t.val_every, t.max_steps),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every,
        gradient_clip_val=cfg.optim.grad_clip or None,
        use_distributed_sampler=False,
        enable_model_summary=False,
    )


def _attempt(run_dir: Path) -> int:
    return len(list((run_dir / "csv").glob("attempt*"))) if (run_dir / "csv").is_dir() else 0


def _strategy(cfg: TrainConfig):
    if cfg.trainer.strategy != "fsdp":
        return cfg.trainer.strategy
    from lightning.pytorch.strategies import FSDPStrategy
    from transformers.models.lfm2.modeling_lfm2 import Lfm2DecoderLayer

    return FSDPStrategy(
        auto_wrap_policy={Lfm2DecoderLayer},
        # LoRA freezes most parameters; FSDP needs original parameters to mix them in a unit.
        use_orig_params=True,
    )
