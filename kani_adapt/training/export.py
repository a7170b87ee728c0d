"""Export a training run (reads only the run directory): adapter + card, or merged checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from kani_adapt import config as config_io, frontend
from kani_adapt.atomic import write_folder
from kani_adapt.errors import CheckpointError
from kani_adapt.locks import hold_output
from kani_adapt.models.generator.checkpoint import read_sampling, save_checkpoint
from kani_adapt.resume import pick_checkpoint
from kani_adapt.training import lora
from kani_adapt.training import run as runs
from kani_adapt.training.config import TrainConfig


def load_run(run_dir: Path):
    """The trained network of a run (a PeftModel in LoRA mode), its tokenizer and config."""
    cfg = config_io.load_config(TrainConfig, run_dir / "config.yaml")
    ckpt, checkpoint = pick_checkpoint(run_dir / "checkpoints", "export")  # weights_only, newest intact
    if ckpt is None:
        raise CheckpointError(f"{run_dir}: no checkpoints/{runs.LAST}; train first")
    model, tokenizer = runs.rebuild_model(run_dir)
    net = lora.apply_lora(model, cfg.lora) if cfg.mode == "lora" else model
    state = checkpoint["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()}, strict=True)
    return net.eval(), tokenizer, cfg


def export_run(run_dir: Path, out: Path, *, merge: bool = False, dtype: str = "bf16"):
    """Write the run's adapter (or merged checkpoint) to ``out``; one export per output folder."""
    with hold_output(Path(out), "kani-adapt export"):
        return _export_run(Path(run_dir), Path(out), merge, dtype)


def _export_run(run_dir: Path, out: Path, merge: bool, dtype: str):
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    net, tokenizer, cfg = load_run(run_dir)
    stats = _read_json(run_dir / "data_stats.json")
    if cfg.mode == "lora" and not merge:
        write_folder(out, lambda tmp: _write_adapter(net, cfg, stats, run_dir, tmp))
        return out, "PEFT adapter"
    final = lora.merge(net) if cfg.mode == "lora" else net
    # the sampling values of the checkpoint training started from (run_dir/base keeps them)
    save_checkpoint(final, tokenizer, out, dtype=dtype, language_tags=stats.get("tags", []),
                    sampling=read_sampling(run_dir / "base"), text_frontend=frontend.read(run_dir))
    return out, "full checkpoint in the official layout"


def _write_adapter(net, cfg: TrainConfig, stats: dict, run_dir: Path, out: Path) -> None:
    net.peft_config["default"].base_model_name_or_path = cfg.model.init
    lora.save_adapter(net, cfg.lora, out)
    metrics = _read_json(run_dir / "metrics.json")
    front = frontend.read(run_dir)
    if front is not None:
        frontend.write(out, front, stats.get("tags", []))
    (out / "README.md").write_text(adapter_card(cfg, stats, metrics, front))


def adapter_card(cfg: TrainConfig, stats: dict, metrics: dict,
                 text_front: frontend.Frontend | None = None) -> str:
    tags = stats.get("tags", [])
    m = metrics.get("metrics", {})
    val = {k: v for k, v in m.items() if k.startswith("val")}
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(val.items())) or "| (none) | |"
    front = "\n".join([
        "---", f"base_model: {cfg.model.init}", "library_name: peft",
        "pipeline_tag: text-to-speech", f"license: {cfg.licence}",
        "tags: [kani-tts-2, lora, " + ", ".join(tags) + "]" if tags else "tags: [kani-tts-2, lora]",
        "---",
    ])
    return f"""{front}

# KaniTTS2 LoRA adapter{': ' + ', '.join(tags) if tags else ''}

LoRA adapter for the KaniTTS2 generator `{cfg.model.init}`, trained with kani-adapt.

| | |
|---|---|
| language/accent tags | {', '.join(tags) or 'none'} |
| training data | {stats.get('train_hours', 0):.2f} h, {stats.get('train_speakers', '?')} speakers |
| held-out validation speakers | {', '.join(stats.get('val_speakers', [])) or 'none'} |
| steps | {metrics.get('steps', '?')} |
| repeated frames | {_repeats(cfg)} |
| text frontend | {frontend.describe(text_front) if text_front else 'not recorded (texts used as stored)'} |
| LoRA | r={cfg.lora.r}, alpha={cfg.lora.alpha}, targets={cfg.lora.targets}, rsLoRA={cfg.lora.rslora} |
| licence | {cfg.licence} |

## Final validation metrics

| metric | value |
|---|---|
{rows}

## Use

The official KaniTTS2 runtime reads full checkpoints only: merge first with
`kani-adapt export RUN_DIR --out DIR --merge`, or in Python:

```python
from kani_adapt.models.generator.checkpoint import load_checkpoint
from kani_adapt.training.lora import load_adapter
model, tokenizer = load_checkpoint("{cfg.model.init}")
model = load_adapter(model, "THIS_FOLDER")
```

Texts are read through the kani-adapt text frontend before tokenizing (numbers, dates and
symbols spelled out; `text_frontend.json` in this folder). `kani-adapt generate` does it
itself; with the official runtime, normalise first:

```python
from kani_adapt import normalize
text = normalize("Am 3. Mai um 14:30", "de")  # "Am dritten Mai um vierzehn Uhr dreißig"
```
"""


def _repeats(cfg: TrainConfig) -> str:
    if cfg.data.drop_repeated_frames:
        return "dropped (data.drop_repeated_frames=true), as the released weights were trained"
    return "kept (data.drop_repeated_frames=false): timing differs from the released weights"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
