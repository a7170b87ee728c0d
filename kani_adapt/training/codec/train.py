"""Codec fine-tuning runs: start, resume exactly, export. NeMo's own GAN step does the training.

A run directory holds everything: config.yaml (resolved, absolute paths), checkpoints/,
tb/ (TensorBoard), metrics.jsonl, tokens_before.pt (mode full) and, at the end, summary.json
(and adapter.safetensors for LoRA). Resume and export read nothing else.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

from kani_adapt.core import atomic, console, locks
from kani_adapt.codec import nanocodec
from kani_adapt.codec.manifest import load_audio, read_manifest
from kani_adapt.config.load import dump_yaml, load_config, load_saved_config, parse_override
from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.core.model_files import torch_load
from kani_adapt.training.codec import lora
from kani_adapt.training.codec.callbacks import Checkpointer, RunState, Validator
from kani_adapt.training.codec.config import RESUMABLE_KEYS, CodecTrainConfig
from kani_adapt.training.codec.data import Position, train_loader

log = logging.getLogger("kani_adapt.train")
FULL_SIZE = 864  # NanoCodec's decoder channels: a codec config that does not say
DRIFT_WARNING = ("mode=full changed the encoder: tokens now mean something else. Re-tokenize the "
                 "data with the exported codec and re-train the generator on the new tokens.")


def _absolute(cfg: CodecTrainConfig) -> CodecTrainConfig:
    """Paths made absolute so the run directory works from any folder."""
    def fix(value):
        return str(Path(value).expanduser().resolve()) if value else value

    codec = cfg.codec if cfg.codec in nanocodec.SIZES or not Path(cfg.codec).exists() else fix(cfg.codec)
    return replace(cfg, train_manifest=fix(cfg.train_manifest), val_manifest=fix(cfg.val_manifest),
                   run_dir=fix(cfg.run_dir), codec=codec, slm_dir=fix(cfg.slm_dir))


def with_discriminators(cfg: CodecTrainConfig) -> CodecTrainConfig:
    """``cfg`` with its discriminators chosen for the codec and the device (``auto``), said in
    one line."""
    from kani_adapt.core.devices import resolve
    from kani_adapt.training.codec.discriminators import choose

    arch = nanocodec.codec_config(cfg.codec)
    width = (arch.get("audio_decoder") or {}).get("base_channels")
    choice = choose(cfg.discriminators, int(width) if width else FULL_SIZE, arch.get("discriminator")
                    is not None, resolve(cfg.device))
    log.info(choice.line)
    return replace(cfg, discriminators=list(choice.kinds))


def prepare_model(cfg: CodecTrainConfig):
    """The codec with the run's mode applied: frozen parts, adapters, optimizer settings."""
    model = nanocodec.load_model(cfg.codec, discriminators=tuple(cfg.discriminators),
                                 slm_dir=cfg.slm_dir, seed=cfg.seed)
    if cfg.mode in ("decoder", "lora"):
        model.audio_encoder.requires_grad_(False)  # tokens keep their meaning
    if model.vector_quantizer is not None:
        model.vector_quantizer.requires_grad_(False)
    if cfg.mode == "lora":
        lora.add_adapters(model.audio_decoder, cfg.lora.r, cfg.lora.alpha, cfg.lora.transposed)
        for module in model.audio_decoder.modules():  # snake alphas stay frozen as well
            for name, p in module.named_parameters(recurse=False):
                if not name.startswith("lora_"):
                    p.requires_grad_(False)
    OmegaConf.set_struct(model._cfg, False)
    sched = None if cfg.optim.lr_decay == 1.0 else {"name": "ExponentialLR", "gamma": cfg.optim.lr_decay}
    model._cfg.optim = {"_target_": "torch.optim.Adam", "lr": cfg.optim.lr, "betas": list(cfg.optim.betas),
                        **({"sched": sched} if sched else {})}
    model._cfg.max_steps = cfg.max_steps * n_optimizers(model)
    model.clip_grad_norm = cfg.optim.grad_clip or None  # 0 and null both mean no clipping
    return model


def n_optimizers(model) -> int:
    return 1 if model.discriminator is None else 2


def _val_audio(cfg: CodecTrainConfig, sample_rate: int) -> list:
    clips = read_manifest(Path(cfg.val_manifest or cfg.train_manifest))[: cfg.val_clips]
    return [load_audio(c.audio_filepath, sample_rate, max_seconds=cfg.val_seconds) for c in clips]


def _encode_all(model, clips: list) -> list[torch.Tensor]:
    codec = nanocodec.NemoCodec(model)
    out = [codec.encode(torch.from_numpy(a)[None], torch.tensor([len(a)]))[0][0] for a in clips]
    model.train()
    return out


def token_drift(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """Share of frames whose 4 tokens are not all unchanged."""
    changed = sum(int((b != a).any(dim=0).sum()) for b, a in zip(before, after))
    total = sum(b.shape[-1] for b in before)
    return changed / max(total, 1)


def _trainer(cfg: CodecTrainConfig, model, run: Path, position: Position, val_clips: list,
             preloaded: dict | None = None, began: float | None = None):
    """The codec's trainer (:func:`kani_adapt.trainer.lightning.build_trainer`): batches counted by
    ``position``, validation and checkpoints by the run's own callbacks."""
    from kani_adapt.trainer import lightning as trainer

    callbacks = [RunState(position),
                 Validator(val_clips, cfg.val_every, position, run / "metrics.jsonl", cfg.max_steps),
                 Checkpointer(run / "checkpoints", position, cfg.ckpt_every, cfg.max_steps),
                 trainer.ProgressLog(max(1, cfg.max_steps // 20), loss_key="g_loss_mel_l1",
                                     rate_key=None, steps_per_update=n_optimizers(model),
                                     name="codec fine-tuning", began=began)]
    return trainer.build_trainer(
        run, device=cfg.device, precision=cfg.precision, preloaded=preloaded,
        max_steps=cfg.max_steps * n_optimizers(model),  # Lightning counts optimizer steps
        callbacks=callbacks, max_epochs=-1, enable_checkpointing=False, limit_val_batches=0,
        log_every_n_steps=1)


def _fit(cfg: CodecTrainConfig, ckpt: Path | None, extra_callbacks=(), preloaded: dict | None = None) -> dict:
    run, began = Path(cfg.run_dir), time.monotonic()
    torch.manual_seed(cfg.seed)
    log.info("codec fine-tuning: building the codec (%s, mode %s) and its discriminators (%s)",
             cfg.codec, cfg.mode, ", ".join(cfg.discriminators) or "none")
    model = prepare_model(cfg)
    clips = read_manifest(Path(cfg.train_manifest))
    spf = int(model.samples_per_frame)
    segment = -(-int(cfg.segment_seconds * model.sample_rate) // spf) * spf
    position = Position()
    loader = train_loader(clips, position, int(model.sample_rate), segment, cfg.batch_size, cfg.seed,
                          cfg.workers)
    val_clips = _val_audio(cfg, int(model.sample_rate))
    before_file = run / "tokens_before.pt"
    if cfg.mode == "full" and not before_file.exists():
        tokens = _encode_all(model, val_clips)
        atomic.write_file(before_file, lambda tmp: torch.save(tokens, tmp))
    trainer = _trainer(cfg, model, run, position, val_clips, preloaded, began)
    trainer.callbacks.extend(extra_callbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch.*")
        trainer.fit(model, train_dataloaders=loader, ckpt_path=str(ckpt) if ckpt else None)
    from kani_adapt.trainer.lightning import stop_signal

    stopper = stop_signal(trainer)
    if stopper.signum is not None:  # checkpoint the batch it stopped at, then say so
        next(c for c in trainer.callbacks if isinstance(c, Checkpointer)).save(trainer)
        stopper.raise_if_stopped(position.batches)
    return _finish(cfg, model, run, position, val_clips)


def _finish(cfg: CodecTrainConfig, model, run: Path, position: Position, val_clips: list) -> dict:
    summary = {"run_dir": str(run), "mode": cfg.mode, "batches": position.batches,
               "last_checkpoint": str(run / "checkpoints" / "last.ckpt")}
    if cfg.mode == "full":
        before = torch_load(run / "tokens_before.pt")
        summary["token_drift"] = round(token_drift(before, _encode_all(model, val_clips)), 4)
        summary["warning"] = DRIFT_WARNING
        warnings.warn(DRIFT_WARNING, stacklevel=2)
    if cfg.mode == "lora":
        summary["adapter"] = str(lora.save_adapter(model.audio_decoder, run / "adapter.safetensors",
                                                   cfg.lora.r, cfg.lora.alpha, cfg.lora.transposed))
    atomic.write_text(run / "summary.json", json.dumps(summary, indent=2))
    return summary


def start_run(config_path: Path | None, overrides: list[str], extra_callbacks=()) -> dict:
    """Start a new run in ``run_dir`` (which must be empty or absent)."""
    cfg = _absolute(load_config(CodecTrainConfig, config_path, overrides))
    run = Path(cfg.run_dir)
    with locks.hold_run(run, "kani-adapt codec train run"):
        if any(p.name != locks.lock_dir(run).name for p in run.iterdir()):
            raise ConfigError(f"run_dir {run} is not empty: resume it with --resume {run}, "
                              f"or choose another run_dir")
        cfg = with_discriminators(cfg)
        dump_yaml(cfg, run / "config.yaml")  # the list chosen: a resumed run trains the same
        with console.working("codec fine-tuning"):
            return _fit(cfg, None, extra_callbacks)


def load_run_config(run: Path) -> CodecTrainConfig:
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run}: not a codec run directory (no config.yaml)")
    return load_saved_config(CodecTrainConfig, path)


def resume_run(run: Path, overrides: list[str], extra_callbacks=()) -> dict:
    """Continue from checkpoints/last.ckpt; only cadence keys and max_steps may change."""
    load_run_config(run)  # a codec run folder, before a lock is put into it
    with locks.hold_run(Path(run), "kani-adapt codec train run"), console.working("codec fine-tuning"):
        return _resume(Path(run), overrides, extra_callbacks)


def _resume(run: Path, overrides: list[str], extra_callbacks) -> dict:
    cfg = load_run_config(run)
    for item in overrides:
        if parse_override(item)[0] not in RESUMABLE_KEYS:
            raise ConfigError(f"override {item!r}: a resumed run may only change {', '.join(RESUMABLE_KEYS)}")
    if overrides:
        cfg = load_saved_config(CodecTrainConfig, Path(run) / "config.yaml", overrides)
        dump_yaml(cfg, Path(run) / "config.yaml")
    from kani_adapt.trainer.resume import pick_checkpoint

    # Read with weights_only=True here; Lightning restores from this state, never the file.
    ckpt, state = pick_checkpoint(Path(run) / "checkpoints")
    if ckpt is None:
        raise ConfigError(f"{run}: no checkpoints/last.ckpt to resume from")
    preloaded = {str(ckpt): state}
    del state  # the trainer's checkpoint I/O holds it until Lightning has restored it
    return _fit(cfg, ckpt, extra_callbacks, preloaded)


def load_trained(run: Path, checkpoint: Path | None = None):
    """The run's codec with trained weights (adapters still separate), without discriminators."""
    from kani_adapt.trainer.resume import load_state

    cfg = load_run_config(run)
    ckpt = checkpoint or Path(run) / "checkpoints" / "last.ckpt"
    if not Path(ckpt).is_file():
        raise CheckpointError(f"{ckpt}: no checkpoint (train the run first)")
    state = load_state(ckpt)["state_dict"]  # weights_only, one-line errors, before any build
    model = prepare_model(cfg)
    nanocodec.check_keys(set(model.state_dict()), set(state), str(ckpt))
    torch.nn.Module.load_state_dict(model, state, strict=True)
    model.discriminator = None
    return model.eval(), cfg


def export_run(run: Path, out: Path, checkpoint: Path | None = None) -> dict:
    """A plain .nemo codec (LoRA merged) from a run directory; LoRA runs also get their adapter."""
    with locks.hold_output(Path(out), "kani-adapt codec export"):
        return _export(Path(run), Path(out), checkpoint)


def _export(run: Path, out: Path, checkpoint: Path | None) -> dict:
    model, cfg = load_trained(run, checkpoint)
    result = {}
    if cfg.mode == "lora":
        adapter = Path(out).with_suffix(".adapter.safetensors")
        result["adapter"] = str(lora.save_adapter(model.audio_decoder, adapter, cfg.lora.r,
                                                  cfg.lora.alpha, cfg.lora.transposed))
        result["merged_convs"] = lora.merge_adapters(model.audio_decoder)
    OmegaConf.set_struct(model._cfg, False)
    model._cfg.discriminator = None
    result["codec"] = str(nanocodec.save_model(model, Path(out)))
    if cfg.mode == "full":
        result["warning"] = DRIFT_WARNING
    return result
