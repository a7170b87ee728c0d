"""Peak memory of one generator training step above the weights: LoRA and full fine-tuning,
clip lengths, gradient checkpointing off/on, full-logits vs chunked loss, in one run.

Each configuration runs in a fresh process (peak RSS cannot be reset cleanly inside one on
every platform, and allocator caches from one configuration would flatter the next). One step
is forward, loss, backward, gradient clipping and an AdamW step, under bf16 autocast with fp32
master weights (Lightning's bf16-mixed), on one clip of N seconds: 12.5 frames/s x 4 tokens,
plus text and control tokens (1.5 text tokens/s + 8). "Peak above weights" is the peak of
live tensor memory during the step over what was allocated before it: on CUDA
``max_memory_allocated``, on CPU the same sum over torch's allocation events (profiler). On CPU
the rise of peak RSS (VmHWM reset after the model is built) is printed beside it: it adds
malloc's caching and fragmentation, and one-time buffers of the first step. The optimiser state created
by the step is included (LoRA: a few MB; full: 8 bytes per parameter).

    python benchmarks/generator_memory.py                # the full grid (long on a CPU)
    python benchmarks/generator_memory.py --quick        # tiny shape, seconds
    python benchmarks/generator_memory.py --modes lora --seconds 40 --checkpointing on

Prints one row per configuration, then tokens per step that fit 24 GB and 80 GB cards.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GB = 1e9


def clip_tokens(seconds: float) -> int:
    return int(12.5 * seconds) * 4 + round(1.5 * seconds) + 8


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _rss_peak() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


class _torch_allocations:
    """On CPU, record torch's own allocations (the profiler's memory events): their peak of
    live bytes is what ``max_memory_allocated`` reports on CUDA, free of malloc's caching."""

    def __init__(self, enabled: bool):
        self.enabled, self.prof = enabled, None

    def __enter__(self):
        if self.enabled:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self.prof.__enter__()
        return self

    def __exit__(self, *exc):
        if self.prof is not None:
            self.prof.__exit__(*exc)


def _peak_live(allocations: _torch_allocations) -> int:
    events = [e for e in allocations.prof.profiler.kineto_results.events()
              if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def one(spec: dict) -> dict:
    """Measure one configuration in this process."""
    import torch

    from kani_adapt import tokens
    from kani_adapt.config.load import load_config
    from kani_adapt.models.generator import checkpoint
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.module import GeneratorModule

    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    base, tok = checkpoint.build_base(spec["size"], seed=0)
    model = checkpoint.convert_base(base, tok, seed=0)
    del base
    cfg = load_config(TrainConfig, None, [
        f"mode={spec['mode']}", f"model.gradient_checkpointing={spec['checkpointing']}",
        f"model.loss_chunk={spec['chunk']}", "lora.dropout=0.0",
        f"model.init={spec['size']}", "data.train=unused"])  # the model is built above, no data read
    module = GeneratorModule(cfg, model).to(device).train()
    optimizer = module.configure_optimizers()["optimizer"]
    n = clip_tokens(spec["seconds"])
    ids = torch.randint(tokens.AUDIO_TOKENS_START, tokens.VOCAB_SIZE, (1, n), device=device)
    batch = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids),
             "speaker_emb": torch.randn(1, 128, device=device)}
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        import gc

        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _rss_now()
    start = time.perf_counter()
    with _torch_allocations(not cuda) as allocations:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = module.training_step(batch, 0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        torch_peak = peak
    else:
        peak = _rss_peak() - before
        torch_peak = _peak_live(allocations)
    return {**spec, "tokens": n, "peak_bytes": torch_peak, "rss_bytes": peak, "weights_bytes": weights,
            "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "step_s": time.perf_counter() - start, "loss": float(loss),
            "device": torch.cuda.get_device_name() if cuda else "CPU"}


def grid(args) -> list[dict]:
    specs = []
    for mode in args.modes:
        for seconds in args.seconds:
            for ckpt in args.checkpointing:
                for chunk in args.chunk:
                    specs.append({"size": args.size, "mode": mode, "seconds": seconds,
                                  "checkpointing": ckpt == "on", "chunk": chunk})
    return specs


def allowed_tokens(row: dict, card_gb: float, margin: float = 0.1) -> int:
    """Tokens per step that fit a card: what is left after fp32 weights, their gradients and
    AdamW state (trainable parameters x 12 bytes), divided by the measured bytes per token."""
    fixed = row["weights_bytes"] + 12 * row["trainable"]
    per_token = max(row["peak_bytes"] - 12 * row["trainable"], 1) / row["tokens"]
    return max(0, int((card_gb * GB * (1 - margin) - fixed) / per_token))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="350m")
    parser.add_argument("--modes", nargs="+", default=["lora", "continue_pretrain"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10, 20, 40])
    parser.add_argument("--checkpointing", nargs="+", default=["off", "on"])
    parser.add_argument("--chunk", nargs="+", type=int, default=[0, 64],
                        help="model.loss_chunk values (0: full logits)")
    parser.add_argument("--quick", action="store_true", help="tiny shape, 10 s clips")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return 0
    if args.quick:
        args.size, args.seconds, args.modes = "tiny", [10.0], ["lora"]
    rows, failures = [], 0
    print(f"{'mode':18s} {'clip':>5s} {'tokens':>6s} {'ckpt':>4s} {'loss':>9s} "
          f"{'peak above weights':>18s} {'RSS rise':>9s} {'step':>7s}", flush=True)
    for spec in grid(args):
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)],
                              capture_output=True, text=True)
        if proc.returncode:
            print(f"{spec}: failed\n{proc.stderr[-1500:]}", flush=True)
            failures += 1
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        loss = f"chunk {row['chunk']}" if row["chunk"] else "full"
        print(f"{row['mode']:18s} {row['seconds']:4.0f}s {row['tokens']:6d} "
              f"{'on' if row['checkpointing'] else 'off':>4s} {loss:>9s} "
              f"{row['peak_bytes'] / GB:15.2f} GB {row['rss_bytes'] / GB:6.2f} GB "
              f"{row['step_s']:6.1f}s", flush=True)
    if rows:
        print(f"device: {rows[0]['device']}, size {args.size}, weights "
              f"{rows[0]['weights_bytes'] / GB:.2f} GB (fp32 master weights, bf16 autocast)")
        print("tokens per step that fit (from the longest clip measured, 10% margin, fp32 "
              "weights + gradients + AdamW state of the trainable parameters reserved):")
        longest = max(r["seconds"] for r in rows)
        for row in rows:
            if row["seconds"] == longest:
                print(f"  {row['mode']:18s} ckpt {'on' if row['checkpointing'] else 'off':3s} "
                      f"{'chunk ' + str(row['chunk']) if row['chunk'] else 'full':9s}: "
                      f"24 GB {allowed_tokens(row, 24):7d}   80 GB {allowed_tokens(row, 80):7d}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if failures else 0  # a configuration that no longer runs is a failed run


if __name__ == "__main__":
    sys.exit(main())
