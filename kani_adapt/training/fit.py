"""`train(cfg)`: build the run, the Lightning trainer, fit (resuming if possible), finish."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from kani_adapt.core import atomic, console, locks
from kani_adapt.text import frontend
from kani_adapt.trainer import resume, lightning as trainers
from kani_adapt.models.generator.checkpoint import write_layout
from kani_adapt.training import run as runs
from kani_adapt.training.budget import TokenBudgetProbe, budget_for
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.csvlog import StepCSVLogger
from kani_adapt.training.module import GeneratorModule
from kani_adapt.training.objectives import registry as objectives
from kani_adapt.training.samples import make_sample_hook

log = logging.getLogger("kani_adapt.train")


def train(cfg: TrainConfig, callbacks: tuple = ()) -> dict:
    """Train (or resume) the run in ``cfg.run_dir``, which one process at a time may hold."""
    with locks.hold_run(Path(cfg.run_dir), "kani-adapt train run"), console.working("training"):
        return _train(cfg, callbacks)


def _train(cfg: TrainConfig, callbacks: tuple) -> dict:
    from kani_adapt.eval.callback import eval_callbacks, stopped_early

    run_dir = runs.prepare_run_dir(cfg)
    stopped = stopped_early(run_dir)
    if stopped and (run_dir / "metrics.json").is_file():
        # a rerun does not undo the stop; it reports it (remove stopped.json to train on anyway)
        log.warning("%s stopped at step %d (%s: %s %.4f -> %.4f); remove %s to train on anyway",
                    run_dir, stopped["step"], stopped["reason"], stopped["metric"],
                    stopped["before"], stopped["now"], run_dir / "stopped.json")
        return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    # Checked (and loaded) here with weights_only=True; Lightning gets the state, not the file.
    resume_from, state = resume.pick_checkpoint(run_dir / "checkpoints")
    resume_step = int(state["global_step"]) if state else 0
    preloaded = {str(resume_from): state} if state else {}
    del state  # held by the trainer's checkpoint I/O only, which lets go once restored
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    console.doing("building the model")
    generator = runs.build_model(cfg)
    console.doing("reading the data")
    budget = budget_for(cfg)  # a number, or the probe that measures it at fit start
    data = objectives.get(cfg.objective).data(cfg, generator.tokenizer, budget)
    data.setup("fit")
    module = GeneratorModule(cfg, generator.model)
    console.doing("loading the codec")
    codec = _codec(cfg)
    console.doing("setting up the trainer")
    # validation samples and scored speech lay their prompts out as the run's rows
    module.sample_hook = make_sample_hook(cfg, data.val_set, codec=codec, layout=data.text_layout)
    if isinstance(budget, TokenBudgetProbe):
        callbacks = (*callbacks, budget)
    callbacks = (*callbacks, *eval_callbacks(cfg.eval, data.val_set, codec, run_dir / "checkpoints",
                                             base_set=data.replay_val, run_dir=run_dir,
                                             sampling=cfg.sampling, layout=data.text_layout))
    trainer = build_trainer(cfg, run_dir, callbacks, preloaded, resume_step)
    if trainer.is_global_zero:
        runs.save_base(generator, run_dir)
        atomic.write_text(run_dir / "data_stats.json", json.dumps(data.stats, indent=2) + "\n")
        frontend.write(run_dir, data.frontend)
        write_layout(run_dir, data.text_layout)
    trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    trainer.save_checkpoint(run_dir / "checkpoints" / runs.LAST)
    # a stop signal ends the fit at a step boundary: the checkpoint above is that step
    trainers.stop_signal(trainer).raise_if_stopped(trainer.global_step, trainer.is_global_zero)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    summary = {"steps": trainer.global_step, "metrics": metrics, "run_dir": str(run_dir)}
    if stopped_early(run_dir):
        summary["stopped_early"] = stopped_early(run_dir)
    if trainer.is_global_zero:
        atomic.write_text(run_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _codec(cfg: TrainConfig):
    """The codec that decodes validation samples to audio (None: token statistics only)."""
    if not cfg.codec:
        return None
    from kani_adapt.codec.registry import load_codec

    return load_codec(cfg.codec)


def build_trainer(cfg: TrainConfig, run_dir: Path, callbacks: tuple = (),
                  preloaded: dict | None = None, resume_step: int = 0) -> L.Trainer:
    """The generator's trainer (:func:`kani_adapt.trainer.lightning.build_trainer`): step checkpoints,
    the CSV log, validation every ``val_every`` steps, the optimiser's gradient clip."""
    t = cfg.trainer
    csv_log = StepCSVLogger(run_dir / "csv" / "metrics.csv", resume_step=resume_step)
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="step-{step:07d}",
        every_n_train_steps=t.ckpt_every, save_top_k=t.keep_checkpoints, monitor="step",
        mode="max", save_last=True, auto_insert_metric_name=False,
    )
    trainer = trainers.build_trainer(
        run_dir, device=t.device, precision=t.precision, max_steps=t.max_steps,
        gpus_per_node=t.gpus_per_node, preloaded=preloaded,
        loggers=[csv_log],  # a resumed run appends TensorBoard events and continues the CSV log
        callbacks=[checkpoints, LearningRateMonitor(logging_interval="step"),
                   trainers.ProgressLog(t.log_every), *callbacks],
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        val_check_interval=min(t.val_every, t.max_steps),
        check_val_every_n_epoch=None,
        log_every_n_steps=t.log_every,
        gradient_clip_val=cfg.optim.grad_clip or None,
        use_distributed_sampler=False,
    )
    csv_log.step_of = lambda: trainer.global_step
    return trainer


def _strategy(cfg: TrainConfig):
    if cfg.trainer.strategy != "fsdp":
        return cfg.trainer.strategy
    from transformers.models.lfm2.modeling_lfm2 import Lfm2DecoderLayer

    return resume.safe_fsdp_strategy(
        auto_wrap_policy={Lfm2DecoderLayer},
        # LoRA freezes most parameters; FSDP needs original parameters to mix them in a unit.
        use_orig_params=True,
    )
