"""Short prompts in the tiny world: the failure rate by prompt length of a tiny generator trained
with and without ``data.repeat_short_texts``, each sampled with and without onset-only
classifier-free guidance. A mechanism check, not a measurement of KaniTTS2: the tiny world's
rows are memorised, its tokenizer spends about one token per character, and its failures are
sampling ones.

    python benchmarks/short_prompts.py [--steps 200] [--seeds 8] [--temperature 1.0] [--texts N]

Rows: espeak-ng German, one to seven words, two voices, real tiny-codec codes and tiny-embedder
voices (the learning tests' world). Both runs train the same steps from the same tiny base with
``data.text_dropout`` 0.1 (so the unconditional branch of guidance is meaningful); the second
repeats texts under 17 text tokens up to about 32 (a quarter of them left plain). Each row is
sampled ``--seeds`` times. A sample fails when it runs to the frame cap (3x its row's frames)
or its length is off by more than half (< 0.5x or > 1.5x the row's frames); its frame accuracy is
the share of the row's frames it says exactly at the same index. Figures are printed, never
asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from kani_adapt import dataset, tokens  # noqa: E402
from tests.learning import world as W  # noqa: E402

TEXTS = ("ja", "nein", "hallo", "danke", "guten morgen", "bis bald", "wie geht es dir",
         "das wetter in frankfurt ist schön", "der zug nach darmstadt fährt gleich ab")
VOICES = (("de", "anna"), ("de+f4", "clara"))
BUCKETS = ((0, 8, "<=8"), (9, 16, "9-16"), (17, 32, "17-32"), (33, 10**9, ">32"))
REPEAT = {"data.repeat_short_texts": "true", "data.repeat_below": 17, "data.repeat_target": 32,
          "data.repeat_keep": 0.25}


def bucket(n: int) -> str:
    return next(name for low, high, name in BUCKETS if low <= n <= high)


def measure(checkpoint: Path, rows: list[dict], seeds: int, temperature: float, cfg: bool):
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.synthesize import text_prompts, synthesize_ids
    from kani_adapt.sampling import SamplingConfig

    model, tok = load_checkpoint(str(checkpoint))
    ids = text_prompts(model, tok, [r["text"] for r in rows], [r["tag"] for r in rows])
    refs = [W.codes_of(r) for r in rows]
    cap = 3 * max(len(c) for c in refs)
    speakers = [dataset.speaker_embedding(r) for r in rows]
    out: dict[str, list] = {}
    for seed in range(seeds):
        sampling = SamplingConfig(temperature=temperature, top_p=1.0, repetition_penalty=1.0,
                                  max_frames=cap, seed=seed,
                                  **({"cfg_scale": 2.0, "cfg_frames": 4} if cfg else {}))
        for row_ids, ref, got in zip(ids, refs, synthesize_ids(model, None, ids, speakers, sampling)):
            ratio = len(got.codes) / len(ref)
            failed = got.hit_length_cap or not 0.5 <= ratio <= 1.5
            out.setdefault(bucket(tokens.text_tokens(row_ids)), []).append(
                (failed, W.frame_accuracy(got.codes, ref)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--texts", type=int, default=len(TEXTS),
                        help="the first N texts only (a quick check that the script runs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kani_adapt import console

    console.setup()
    print(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    root = Path(tempfile.mkdtemp(prefix="short-prompts-"))
    try:
        lines = [W.Line(t, "de", v, s) for t in TEXTS[:args.texts] for v, s in VOICES]
        rows = W.rows(lines, W.voices(lines))
        data = W.write_dataset(rows, root / "data")
        runs = {}
        for name, extra in (("plain", {}), ("repeated", REPEAT)):
            start = time.monotonic()
            W.train(root / name, data, "tiny", "continue_pretrain", args.steps, args.lr,
                    **{"data.text_dropout": 0.1}, **extra)
            runs[name] = W.export(root / name, root / f"{name}_merged")
            print(f"trained {name} in {time.monotonic() - start:.0f} s")
        print(f"\n{len(rows)} rows x {args.seeds} samples, temperature {args.temperature}; "
              "failure rate (frame accuracy) by prompt length in text tokens\n")
        names = [name for *_, name in BUCKETS]
        print("| training | guidance | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for name, ckpt in runs.items():
            for cfg in (False, True):
                got = measure(ckpt, rows, args.seeds, args.temperature, cfg)
                cells = []
                for b in names:
                    if b not in got:
                        cells.append("-")
                        continue
                    fails, acc = zip(*got[b])
                    cells.append(f"{np.mean(fails):.0%} ({np.mean(acc):.2f}, n={len(fails)})")
                guide = "cfg 2.0 over 4 frames" if cfg else "none"
                print(f"| {name} | {guide} | " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
