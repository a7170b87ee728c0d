"""A training run: its directory, model, data, Lightning trainer, and exact resume.

run_dir/
  config.yaml        resolved config (a re-run with a different config is refused)
  base/              model config and tokenizer: with a checkpoint, enough to rebuild the model
  data_stats.json    hours, speakers, tags seen
  text_frontend.json the text frontend the texts were read through (kani_adapt.text.frontend)
  checkpoints/       step-*.ckpt and last.ckpt (model, optimizer, scheduler, step, RNG), plain
                     tensors only: resume reads them with weights_only=True (kani_adapt.trainer.resume)
  tb/                TensorBoard events
  csv/metrics.csv    the same scalars as step,name,value rows (kani_adapt.training.csvlog)
  metrics.json       final metrics, written when the run ends
"""
from __future__ import annotations

from pathlib import Path


from kani_adapt.config import load as config_io
from kani_adapt.core.errors import ConfigError
from kani_adapt.core.model_files import check_model_folder, read_json_object
from kani_adapt.models.generator import checkpoint, sizes
from kani_adapt.models.generator.bundle import Generator
from kani_adapt.training.config import TrainConfig

LAST = "last.ckpt"


def prepare_run_dir(cfg: TrainConfig) -> Path:
    """Create or re-open the run directory (:func:`kani_adapt.trainer.resume.pick_checkpoint` then
    chooses the checkpoint to resume from)."""
    run_dir = Path(cfg.run_dir)
    saved = run_dir / "config.yaml"
    if saved.exists():
        previous = config_io.load_saved_config(TrainConfig, saved)
        previous.trainer.max_steps = cfg.trainer.max_steps  # extending a run is allowed
        if previous != cfg:
            diff = _diff(config_io.to_dict(previous), config_io.to_dict(cfg))
            raise ConfigError(f"{run_dir} holds a run with another config ({', '.join(diff[:4])}); "
                              "choose a new run_dir or restore those values")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_io.dump_yaml(cfg, saved)
    return run_dir


def build_model(cfg: TrainConfig) -> Generator:
    """The generator to train: random of a size, a KaniTTS2 checkpoint (with what it was trained
    with), or a converted base; its model in training mode."""
    init = cfg.model.init
    if init in sizes.SIZES:
        base, tokenizer = checkpoint.build_base(init, seed=cfg.trainer.seed)
        generator = Generator(checkpoint.convert_base(base, tokenizer, seed=cfg.trainer.seed),
                              tokenizer)
    else:
        path = checkpoint.resolve(init)
        if read_json_object(path / "config.json").get("use_learnable_rope"):
            generator = checkpoint.load_checkpoint(str(path))
        else:
            generator = Generator(*checkpoint.init_from_base(str(path)))
    generator.model.config._attn_implementation = cfg.model.attn_implementation
    generator.model.train()
    return generator


def save_base(generator: Generator, run_dir: Path) -> None:
    """Model config, tokenizer and what the base was trained with (no weights: those live in
    the checkpoints)."""
    out = run_dir / "base"
    # a model under PEFT (LoRA, trained rows of the tied head) is saved without its weights
    checkpoint.save_checkpoint(generator, out, dtype="fp32", weights=False)


def rebuild_model(run_dir: Path):
    """An untrained model of the run's shape, and its tokenizer, from run_dir/base."""
    from kani_adapt.models.generator.model import KaniTTS2ForCausalLM

    base = check_model_folder(run_dir / "base")
    config = checkpoint.read_config(base)
    return KaniTTS2ForCausalLM(config), checkpoint.load_tokenizer(base)


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            out += _diff(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            out.append(f"{prefix}{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out
