"""Generation speed: kani-adapt's `generate` vs the official runtime's `generate()`, same
checkpoint, same machine, one run.

A random generator of each size is saved once in the official layout and loaded by both:
kani-adapt's loader and the official `kani_tts.model.KaniTTS2ForCausalLM.from_pretrained`
(the `kani-tts-2` wheel). Both sample with the official defaults (temperature 0.7, top-p 0.95,
repetition penalty 1.1) from the same prompts with a speaker embedding. The official runtime is
told to generate exactly N tokens per row (`min_new_tokens`); ours runs to N tokens unless a
row ends its speech, and only tokens it really generated are counted. One warm-up call each;
then the two alternate `--repeats` times and each keeps its best (on a shared machine other
work slows whichever runs at the time).

    python benchmarks/generation_speed.py                      # tiny and 350m, batch 1 and 16
    python benchmarks/generation_speed.py --quick              # tiny, batch 1 and 4, seconds
    python benchmarks/generation_speed.py --sizes 350m --batches 1 16 --tokens 64

Prints tokens/s (all rows together) of each and the ratio. Targets: at least the official
speed at batch 1, several times it at batch 16.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(size: str, out: Path):
    from kani_adapt.models.generator import checkpoint

    base, tok = checkpoint.build_base(size, seed=0)
    model = checkpoint.convert_base(base, tok, seed=0)
    checkpoint.save_checkpoint(model, tok, out, dtype="fp32")
    return tok


def prompts(tok, batch: int) -> list[list[int]]:
    from kani_adapt import tokens
    from kani_adapt.models.generator.tokenizer import encode_text

    texts = ["hello there, how are you today", "a short one", "the quick brown fox jumps",
             "numbers like twenty one"]
    return [tokens.prompt_ids(encode_text(tok, texts[i % len(texts)])) for i in range(batch)]


def ours(path: Path, rows: list[list[int]], spk, new_tokens: int, device, dtype) -> tuple:
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.generate import generate
    from kani_adapt.config.sampling import SamplingConfig

    model, _ = load_checkpoint(str(path))
    model = model.to(device, dtype).eval()

    def run(n):
        cfg = SamplingConfig(max_frames=max(1, n // 4), seed=0)  # the official defaults
        _sync(device)
        start = time.perf_counter()
        out = generate(model, rows, spk, cfg)
        _sync(device)
        return sum(len(r.token_ids) - len(p) for r, p in zip(out, rows)), time.perf_counter() - start

    run(8)
    return run


def official(path: Path, rows: list[list[int]], spk, new_tokens: int, device, dtype) -> tuple:
    from kani_adapt import tokens
    from kani_tts.model import KaniTTS2ForCausalLM

    model = KaniTTS2ForCausalLM.from_pretrained(str(path)).to(device, dtype).eval()
    width = max(len(p) for p in rows)
    ids = torch.tensor([[tokens.PAD] * (width - len(p)) + p for p in rows], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], device=device)

    def run(n):
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                 min_new_tokens=n, do_sample=True, temperature=0.7, top_p=0.95,
                                 repetition_penalty=1.1, eos_token_id=tokens.END_OF_SPEECH,
                                 pad_token_id=tokens.PAD, speaker_emb=spk)
        _sync(device)
        return (out.shape[1] - width) * len(rows), time.perf_counter() - start

    run(8)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "350m"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--tokens", type=int, default=0,
                        help="new tokens per row (default: 200 tiny, 48 for 350m)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternate the two this many times and keep each one's best")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batches, args.tokens, args.repeats = ["tiny"], [1, 4], 32, 1
    import transformers

    transformers.logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    print(f"device: {torch.cuda.get_device_name() if cuda else 'CPU'}, {dtype}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'size':5s} {'batch':>5s} {'tokens':>6s} {'kani-adapt tok/s':>17s} "
          f"{'official tok/s':>15s} {'ratio':>6s}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / size
            tok = build(size, path)
            n = args.tokens or (200 if size == "tiny" else 48)
            for batch in args.batches:
                rows = prompts(tok, batch)
                spk = torch.randn(batch, 128, generator=torch.Generator().manual_seed(0))
                spk = spk.to(device, dtype)
                run_a = ours(path, rows, spk, n, device, dtype)
                run_b = official(path, rows, spk, n, device, dtype)
                a = b = 0.0
                for _ in range(args.repeats):  # alternating: a busy machine slows both
                    done, seconds = run_a(n)
                    a = max(a, done / seconds)
                    done, seconds = run_b(n)
                    b = max(b, done / seconds)
                print(f"{size:5s} {batch:5d} {n:6d} {a:17.1f} {b:15.1f} {a / b:5.2f}x",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
