"""The README's main job: the whole generator flow on CPU with a tiny model, no downloads.

A synthetic tokenized corpus (two tags, three speakers) -> LoRA training with the Lightning
trainer -> export as a PEFT adapter with its card and as a merged official checkpoint -> the
merged checkpoint loaded back through the official-layout loader -> codes generated. It shows the
contract end to end, not speech quality (the corpus is synthetic and the model tiny).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.config import load_config
from kani_adapt.models.generator.checkpoint import load_checkpoint
from kani_adapt.models.generator.generate import SamplingConfig, generate
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.export import export_run
from kani_adapt.training.fit import train
from kani_adapt.training.synthetic import synthetic_dataset, synthetic_rows


def demo_config(out: Path, steps: int, seed: int) -> TrainConfig:
    return load_config(TrainConfig, None, [
        f"run_dir={out / 'run'}", f"data.train={out / 'data'}", "model.init=tiny", "mode=lora",
        "lora.targets=all_linear", "lora.train_rope_scales=true", "optim.lr=0.005",
        "optim.warmup_steps=3", f"trainer.max_steps={steps}", "trainer.accelerator=cpu",
        "trainer.precision=32-true", f"trainer.val_every={max(1, steps // 2)}",
        f"trainer.ckpt_every={max(1, steps // 2)}", "trainer.log_every=5",
        "trainer.sample_max_frames=20", "data.token_budget=1024", f"trainer.seed={seed}",
        "licence=cc-by-4.0",
    ])


def run_demo(out: Path, steps: int = 30, seed: int = 0) -> dict:
    start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "data").exists():
        synthetic_dataset(out / "data", n_speakers=3, per_speaker=4, seed=seed)
    cfg = demo_config(out, steps, seed)
    summary = train(cfg)
    adapter, _ = export_run(Path(cfg.run_dir), out / "adapter")
    merged, _ = export_run(Path(cfg.run_dir), out / "merged", merge=True)
    model, tokenizer = load_checkpoint(str(merged))
    row = synthetic_rows(n_speakers=1, per_speaker=1, seed=seed)[0]
    prompt = tokens.prompt_ids(encode_text(tokenizer, row["text"], row["tag"]))
    speaker = torch.tensor([row["speaker_emb"]])
    result = generate(model, [prompt], speaker, SamplingConfig(max_new_frames=60, seed=seed))[0]
    np.save(out / "codes.npy", result.codes.astype(np.int32))
    metrics = summary["metrics"]
    report = {
        "run_dir": cfg.run_dir,
        "adapter": str(adapter),
        "merged_checkpoint": str(merged),
        "codes": f"{out / 'codes.npy'} ({len(result.codes)} frames for {row['text']!r})",
        "val_loss": round(metrics.get("val/loss", float("nan")), 3),
        "train_loss": round(metrics.get("train/loss", float("nan")), 3),
        "tensorboard": f"tensorboard --logdir {cfg.run_dir}/tb",
        "wall_seconds": round(time.time() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
