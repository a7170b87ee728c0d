"""Evaluation throughput: utterances per minute of a full eval (generate, decode, every scorer)
and where the time goes; batched scoring against one clip at a time (the baseline).

    python benchmarks/eval_throughput.py --quick            # tiny shapes, a few seconds of work
    python benchmarks/eval_throughput.py [--shape full] [--items 32] [--max-frames 100]
        [--asr openai/whisper-large-v3] [--device cuda]

Random weights (tiny or full-size generator, codec and speaker embedder), so the speech is noise
and the quality figures mean nothing; the timings are what is measured. DNSMOS, failures and
speaker similarity always run; CER/WER and language ID when --asr names a Whisper folder or id.
--judges twin adds the accent judge (the SpeechBrain-built twin of tests/fixtures), the phoneme
error rate and the second CTC recogniser (the tests' twins); --judges full the same at their
published sizes (CommonAccent's ECAPA widths, wav2vec2-large), random weights. Each scorer is
timed batched and one clip at a time in the same run.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = {"tiny": ("tiny", "tiny", None), "full": ("350m", "0.6kbps", "full")}


class Clock:
    def __init__(self):
        self.spent: dict[str, float] = {}

    def __call__(self, name, func, *args, **kwargs):
        start = time.perf_counter()
        out = func(*args, **kwargs)
        self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start
        return out


def build(folder: Path, shape: str):
    from kani_adapt.models.speaker import embedder as speaker_embedder
    from kani_adapt.cli.main import main

    gen_size, codec, _ = SHAPES[shape]
    assert main(["init", "--size", gen_size, "--out", str(folder / "gen"), "--dtype", "fp32"]) == 0
    speaker_embedder.save(speaker_embedder.build(seed=0), folder / "embedder")
    return str(folder / "gen"), codec, str(folder / "embedder")


def build_judges(folder: Path, size: str) -> dict:
    """The judges' models: the tests' twins, or (``full``) the published sizes with random
    weights (the accent classifier written in SpeechBrain's layout by kani-adapt's rebuild)."""
    import shutil
    import sys

    root = str(Path(__file__).resolve().parents[1])  # the twins' builders live in tests/
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.scorers.ctc_twins import character_recogniser, phoneme_recogniser

    twin = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "commonaccent-ecapa-twin"
    accent = folder / "accent"
    shutil.copytree(twin, accent)
    if size == "full":
        import torch

        from kani_adapt.scorers import ecapa

        text = (accent / "hyperparams.yaml").read_text()
        (accent / "hyperparams.yaml").write_text(
            text.replace("[32, 32, 32, 32, 96]", "[1024, 1024, 1024, 1024, 3072]")
            .replace("attention_channels: 16", "attention_channels: 128").replace("emb_dim: 16", "emb_dim: 192"))
        model = ecapa.EcapaTdnn(80, 192, torch.nn.LeakyReLU, (1024, 1024, 1024, 1024, 3072))
        torch.save(model.state_dict(), accent / "embedding_model.ckpt")
        torch.save(ecapa.CosineClassifier(192, 16).state_dict(), accent / "classifier.ckpt")
    large = size == "full"
    return {"accent_classifiers": {"en": str(accent)},
            "phoneme_model": str(phoneme_recogniser(folder / "phonemes", large=large)),
            "ctc_asr": str(character_recogniser(folder / "ctc", large=large))}


def items(n: int):
    from kani_adapt.eval.evalset import EvalItem

    words = "the bus to the city centre leaves at nine and it is a lovely day".split()
    rng = np.random.default_rng(0)
    return [EvalItem(id=str(i), text=" ".join(rng.choice(words, size=int(rng.integers(4, 12)))),
                     speaker=f"s{i % 4}", tag="en") for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 items, 6 frames: a check that it runs")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--max-frames", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--asr", default="", help="Whisper folder or hub id (adds CER/WER, language ID)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--judges", choices=("none", "twin", "full"), default="none",
                    help="add the accent, phoneme and CTC judges (twins or published sizes)")
    args = ap.parse_args()
    if args.quick:
        args.items, args.max_frames = 2, 6

    from kani_adapt.codec.registry import load_codec
    from kani_adapt.eval.config import EvalConfig
    from kani_adapt.scorers.config import ScorerConfig
    from kani_adapt.eval.generation import decode, generate_items
    from kani_adapt.scorers.registry import Clip, Scorers
    from kani_adapt.config.sampling import SeededSampling

    with tempfile.TemporaryDirectory() as tmp:
        gen, codec_spec, embedder = build(Path(tmp), args.shape)
        judges = build_judges(Path(tmp), args.judges) if args.judges != "none" else {}
        from kani_adapt.text.tags import Tag

        cfg = EvalConfig(codec=codec_spec, sampling=SeededSampling(max_frames=args.max_frames),
                         batch_size=args.batch_size,
                         device=args.device, tags={"en": Tag(accent_label="scotland")},
                         scorers=ScorerConfig(asr=args.asr, speaker_embedder=embedder, dnsmos_threads=0,
                                              batch_size=args.batch_size, **judges))
        clock = Clock()
        codec = clock("load codec", load_codec, codec_spec, args.device)
        scorers = clock("load scorers", Scorers, cfg.scorers, args.device, cfg.tags)
        evals = items(args.items)
        speakers = [None] * len(evals)
        clock("load generator + generate", generate_items, gen, evals, speakers, cfg, args.device, 0)
        start = time.perf_counter()
        generated = clock("generate", generate_items, gen, evals, speakers, cfg, args.device, 0)
        gen_time = time.perf_counter() - start
        audios = clock("decode", decode, codec, [g.codes for g in generated])
        clips = [Clip(audio=a, text=i.text, speaker=i.speaker, tag=i.tag, codes=g.codes,
                      hit_length_cap=g.hit_length_cap) for a, i, g in zip(audios, evals, generated)]
        rate = codec.sample_rate
        scorers.score(clips[:1], rate)  # warm-up: numba compilation inside librosa, lazy inits
        per_scorer = {}
        for name in ("dnsmos", "asr", "similarity", "accent_id", "phonemes", "ctc_asr"):
            model = scorers.models.get(name)
            if model is None:
                continue
            run = {"dnsmos": lambda cs: model.score([c.audio for c in cs], rate),
                   "asr": lambda cs: model.transcribe([c.audio for c in cs], rate, ["en"] * len(cs)),
                   "similarity": lambda cs: model.embed([c.audio for c in cs], rate),
                   "accent_id": lambda cs: model.models["en"].classify([c.audio for c in cs], rate),
                   "phonemes": lambda cs: model.tokens([c.audio for c in cs], rate),
                   "ctc_asr": lambda cs: model.transcribe([c.audio for c in cs], rate, ["en"] * len(cs))}[name]
            t0 = time.perf_counter()
            run(clips)
            batched = time.perf_counter() - t0
            t0 = time.perf_counter()
            for c in clips:
                run([c])
            single = time.perf_counter() - t0
            per_scorer[name] = (batched, single)
        t0 = time.perf_counter()
        scorers.score(clips, rate)
        score_time = time.perf_counter() - t0

    audio_s = sum(len(a) for a in audios) / rate
    total = gen_time + clock.spent["decode"] + score_time
    print(f"shape {args.shape}, {len(evals)} items, {audio_s:.1f} s of audio, device {args.device}")
    print(f"full eval: {len(evals) / total * 60:.1f} utterances/minute ({total:.2f} s)")
    print(f"  generate {gen_time:.2f} s, decode {clock.spent['decode']:.2f} s, score {score_time:.2f} s")
    for name, (batched, single) in per_scorer.items():
        print(f"  {name}: batched {batched:.2f} s, one clip at a time {single:.2f} s "
              f"({single / max(batched, 1e-9):.2f}x)")
    print(f"  one-off: load codec {clock.spent['load codec']:.2f} s, scorers {clock.spent['load scorers']:.2f} s")


if __name__ == "__main__":
    main()
