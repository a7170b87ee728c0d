"""Real-token throughput and padding efficiency: kani-adapt's training loop vs HF Trainer + PEFT.

Both train the same LoRA on the same generator size and the same synthetic corpus (durations
uniform in 1-20 s; --max-seconds shortens them). kani-adapt uses length-aware batches under a
token budget; the baseline is what the upstream LoRA pipeline does: HF Trainer with fixed-size
batches in random order, sized so that a batch holds on average as many real tokens as ours.

    python benchmarks/generator_throughput.py [--size tiny] [--steps 20] [--budget 4096] [--compile]

Prints one line per loop and the ratio; targets: >= 1.5x real tokens/s, padding >= 0.9.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def corpus(path: Path, n: int, seed: int, max_seconds: float = 20.0) -> Path:
    from kani_adapt.training.synthetic import synthetic_rows

    import datasets

    datasets.disable_progress_bars()  # their carriage-return lines would pass for figures
    rows = synthetic_rows(n_speakers=max(2, n // 20), per_speaker=20, seed=seed,
                          frames_range=(int(1 * 12.5), int(max_seconds * 12.5) + 1))[:n]
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def ours(data: Path, run_dir: Path, size: str, steps: int, budget: int | str,
         compile: bool = False) -> dict:
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.fit import train

    overrides = [f"run_dir={run_dir}", f"data.train={data}", f"model.init={size}",
                 f"trainer.max_steps={steps}", "trainer.precision=32-true",
                 f"trainer.val_every={steps}", f"trainer.ckpt_every={steps}",
                 "trainer.sample_prompts=0", "data.val_speakers=0", f"data.token_budget={budget}",
                 "trainer.device=auto",
                 f"trainer.compile={str(compile).lower()}", "data.num_workers=0"]
    cfg = load_config(TrainConfig, None, overrides)
    import lightning as L

    ends: list[float] = []
    plan: dict = {}

    class Clock(L.Callback):
        def on_train_start(self, trainer, pl_module):
            # the batches the fit runs: with token_budget auto they are planned at fit start
            data = trainer.datamodule
            plan["lengths"] = data.train_set.lengths
            plan["batches"] = list(data.train_dataloader().batch_sampler)

        def on_train_batch_end(self, *args):
            ends.append(time.perf_counter())

    train(cfg, callbacks=(Clock(),))
    lengths, batches = plan["lengths"], plan["batches"]
    real = [sum(lengths[i] for i in b) for b in batches]
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    # Steady state: from the end of the first step to the end of the last.
    return {"real_tokens": sum(real[1:]), "seconds": ends[-1] - ends[0],
            "padding": sum(real) / padded, "mean_real_per_batch": sum(real) / len(batches),
            "lengths": lengths}


def baseline(data: Path, out: Path, size: str, steps: int, batch_size: int) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from kani_adapt.config.load import load_config
    from kani_adapt.models.generator.batch import collate
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.dataset import read as load_table
    from kani_adapt.training.data import tokenize_table
    from kani_adapt.training.lora import PRESETS
    from kani_adapt.training.run import build_model

    cfg = load_config(TrainConfig, None, [f"model.init={size}", f"data.train={data}",
                                          "data.use_speaker_emb=true"])
    built = build_model(cfg)  # the generator bundle
    model, tokenizer = built.model, built.tokenizer
    table = load_table(str(data))
    dataset = tokenize_table(table, range(len(table)), tokenizer, cfg.data, str(data))
    real, padded, ends = [], [], []

    def collator(items):
        batch = collate([it.example for it in items], np.stack([it.speaker_emb for it in items]))
        real.append(int(batch["attention_mask"].sum()))
        padded.append(batch["attention_mask"].numel())
        return batch

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            ends.append(time.perf_counter())

    peft_model = get_peft_model(model, LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=PRESETS[cfg.lora.targets]))
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=batch_size, max_steps=steps,
        learning_rate=cfg.optim.lr, report_to=[], save_strategy="no", logging_strategy="no",
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = Trainer(model=peft_model, args=args, train_dataset=dataset, data_collator=collator,
                      callbacks=[Clock()])
    trainer.train()
    steps_done = len(ends)
    return {"real_tokens": sum(real[1:steps_done]), "seconds": ends[-1] - ends[0],
            "padding": sum(real[:steps_done]) / max(1, sum(padded[:steps_done]))}


def _budget(text: str) -> int | str:
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", help="generator size preset")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--budget", type=_budget, default=4096,
                        help="our padded tokens per batch, or auto (probed on the GPU)")
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="longest clip of the corpus (durations uniform from 1 s)")
    parser.add_argument("--compile", action="store_true",
                        help="also run ours with trainer.compile (torch.compile), same data")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is warm-up, the rest are timed")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = corpus(tmp / "data", args.utterances, seed=0, max_seconds=args.max_seconds)
        a = ours(data, tmp / "ours", args.size, args.steps, args.budget)
        batch_size = max(1, round(a["mean_real_per_batch"] / float(np.mean(a["lengths"]))))
        b = baseline(data, tmp / "hf", args.size, args.steps, batch_size)
        c = ours(data, tmp / "compiled", args.size, args.steps, args.budget, compile=True) \
            if args.compile else None
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, size: {args.size}, "
          f"steps: {args.steps}")
    for name, r in (("kani-adapt (length-aware)", a), (f"HF Trainer+PEFT (random, bs={batch_size})", b)):
        print(f"{name:42s} real tokens/s {r['real_tokens'] / r['seconds']:9.1f}   "
              f"padding efficiency {r['padding']:.3f}   ({r['real_tokens']} tokens, {r['seconds']:.1f} s)")
    if c is not None:
        print(f"{'kani-adapt + trainer.compile':42s} real tokens/s "
              f"{c['real_tokens'] / c['seconds']:9.1f}   (compile time in the first step, "
              f"not timed; {c['real_tokens'] / c['seconds'] / (a['real_tokens'] / a['seconds']):.2f}x "
              "uncompiled)")
    ratio = (a["real_tokens"] / a["seconds"]) / (b["real_tokens"] / b["seconds"])
    print(f"throughput ratio: {ratio:.2f}x (target >= 1.5x); our padding efficiency "
          f"{a['padding']:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
