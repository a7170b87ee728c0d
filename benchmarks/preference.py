"""Preference training's two costs, in one run: rollouts per second generated batched (the
sample stage's way: ``generate`` with each row's own frame cap) against one at a time, and one
DPO step's time and peak memory (``objective: dpo``'s loss on a batch of pairs, backward
included, LoRA on q/v plus the end-of-speech row).

    python benchmarks/preference.py [--size tiny|350m] [--rollouts 16] [--batch 16]
                                    [--frames 40] [--pairs 4] [--device auto]

Random weights of the named size (the cost does not depend on what the weights say); every row
is forced to run to its cap (the end-of-speech row zeroed) so both ways generate the same number
of frames. Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kani_adapt import tokens  # noqa: E402
from kani_adapt.config.load import load_config  # noqa: E402
from kani_adapt.config.sampling import SamplingConfig  # noqa: E402
from kani_adapt.core.devices import resolve  # noqa: E402
from kani_adapt.models.generator import checkpoint  # noqa: E402
from kani_adapt.models.generator.generate import generate  # noqa: E402
from kani_adapt.models.generator.tokenizer import encode_text  # noqa: E402
from kani_adapt.training import trajectory  # noqa: E402
from kani_adapt.training.config import TrainConfig  # noqa: E402
from kani_adapt.training.module import GeneratorModule  # noqa: E402
from kani_adapt.training.objectives import dpo  # noqa: E402


def rollouts_per_second(model, prompts, speakers, frames: int, batch: int) -> float:
    sampling = SamplingConfig(temperature=0.4, top_p=1.0, repetition_penalty=1.0, max_frames=frames, seed=0)
    start = time.perf_counter()
    for k in range(0, len(prompts), batch):
        generate(model, prompts[k:k + batch], speakers[k:k + batch], sampling,
                 caps=[frames] * len(prompts[k:k + batch]))
    if speakers.is_cuda:
        torch.cuda.synchronize()
    return len(prompts) / (time.perf_counter() - start)


def dpo_step(model, tok, pairs: int, frames: int, device) -> tuple[float, float]:
    """(seconds, peak MiB: CUDA allocated, or the process's max RSS on a CPU) of one step."""
    cfg = load_config(TrainConfig, None, ["data.train=unused", "model.init=tiny", "objective=dpo",
                                          "dpo.pairs=unused", "mode=lora", "lora.targets=qv",
                                          "lora.stop_row=true"])
    module = GeneratorModule(cfg, model).to(device)
    rng = np.random.default_rng(0)
    prompt = tokens.prompt_ids(encode_text(tok, "Guten Morgen", "de"))
    rows = [trajectory.Rollout(prompt, rng.integers(0, tokens.CODEBOOK_SIZE, (frames, 4)), False,
                               rng.standard_normal(128).astype(np.float32)) for _ in range(2 * pairs)]
    batch = trajectory.batch(rows)
    batch["ref"], batch["weight"] = torch.zeros(2 * pairs), torch.ones(pairs)
    batch = {k: v.to(device) for k, v in batch.items()}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    loss, _ = dpo.pair_loss(module, batch)
    loss.backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return time.perf_counter() - start, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--rollouts", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve(args.device)
    base, tok = checkpoint.build_base(args.size)
    model = checkpoint.convert_base(base, tok).to(device).eval()
    with torch.no_grad():
        model.lm_head.weight[tokens.END_OF_SPEECH] = 0.0  # every row runs to its cap
    texts = ["Ja.", "Danke schön.", "Wie geht es dir heute?", "Bis morgen."]
    prompts = [tokens.prompt_ids(encode_text(tok, texts[i % len(texts)], "de")) for i in range(args.rollouts)]
    speakers = torch.randn(args.rollouts, 128, device=device)
    rollouts_per_second(model, prompts[:2], speakers[:2], 2, 2)  # warm-up
    one = rollouts_per_second(model, prompts, speakers, args.frames, 1)
    batched = rollouts_per_second(model, prompts, speakers, args.frames, args.batch)
    seconds, peak = dpo_step(model, tok, args.pairs, args.frames, device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else \
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"| {time.strftime('%Y-%m-%d')} | {name} | {args.size} | {args.rollouts} x {args.frames} "
          f"frames | {one:.2f} | {batched:.2f} (batch {args.batch}) | {batched / one:.1f}x | "
          f"{args.pairs} pairs x {args.frames} frames: {seconds:.2f} s, {peak:.0f} MiB |")


if __name__ == "__main__":
    main()
