"""ASR throughput of the transcribe stage (x real time), batched by length against one clip at a
time (the baseline, measured in the same run); DNSMOS seconds of compute per hour of audio.

    python benchmarks/asr_throughput.py --quick              # test-twin Whisper, 4 clips, seconds
    python benchmarks/asr_throughput.py [--shape tiny] [--clips 16] [--batch-size 8]
        [--asr openai/whisper-large-v3] [--device cuda] [--no-dnsmos]

Random weights in the Whisper shape asked for (``twin``: the tests' 16-wide model; ``tiny``:
whisper-tiny's layer sizes) with the tests' offline vocabulary, so the text is nonsense and only
the timings mean something; ``--asr`` times a real checkpoint instead. Every clip decodes a fixed
number of tokens (``--tokens``; random weights rarely stop on their own) so both runs do the same
work. Clips are espeak-ng speech (noise where espeak-ng is missing), 2-20 s.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RATE = 16000
WORDS = "the bus to the city centre leaves at nine and it is a lovely day by the river".split()
SHAPES = {"twin": None, "tiny": dict(d_model=384, encoder_layers=4, decoder_layers=4,
                                     encoder_attention_heads=6, decoder_attention_heads=6,
                                     encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                                     max_target_positions=448)}


def build(folder: Path, shape: str) -> Path:
    """The tests' offline Whisper twin, widened to ``shape``'s layer sizes (random weights)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from tests.scorers.whisper_twin import build_tiny_whisper

    path = build_tiny_whisper(folder)
    if SHAPES[shape]:
        model = WhisperForConditionalGeneration.from_pretrained(str(path))
        config = type(model.config)(**{**model.config.to_dict(), **SHAPES[shape],
                                       "num_hidden_layers": SHAPES[shape]["encoder_layers"]})
        torch.manual_seed(0)
        wide = WhisperForConditionalGeneration(config).eval()
        wide.generation_config = model.generation_config
        wide.generation_config.max_length = config.max_target_positions
        wide.save_pretrained(str(path))
    return path


def clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            seconds = float(rng.uniform(2, 20))
            if shutil.which("espeak-ng"):
                text = " ".join(rng.choice(WORDS, size=int(seconds * 2.5)))
                wav = Path(tmp) / f"{i}.wav"
                subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
                import soundfile as sf
                from kani_adapt.audio import resample
                audio, rate = sf.read(wav, dtype="float32")
                out.append(resample(audio, rate, RATE)[: int(20 * RATE)])
            else:
                out.append((0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32))
    return out


def time_asr(spec: str, device: str, audios, batch_size: int, tokens: int) -> float:
    from kani_adapt.scorers.asr import WhisperASR

    asr = WhisperASR.load(spec, device, batch_size)
    asr.max_new_tokens = tokens
    asr.model.generation_config.min_new_tokens = None
    asr.transcribe(audios[:1], RATE, ["en"])  # warm-up: first-call allocations
    start = time.perf_counter()
    asr.transcribe(audios, RATE, ["en"] * len(audios))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="twin shape, 4 clips: a check that it runs")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--asr", default="", help="a real Whisper folder or hub id instead")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=40, help="tokens decoded per clip")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-dnsmos", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.shape, args.clips, args.tokens = "twin", 4, 10
    import torch

    print(f"torch threads: {torch.get_num_threads()}, device {args.device}")
    audios = clips(args.clips)
    seconds = sum(len(a) for a in audios) / RATE
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.asr or str(build(Path(tmp) / "whisper", args.shape))
        if not args.asr:  # random weights: room for --tokens
            args.tokens = min(args.tokens, 448 if args.shape == "tiny" else 19)
        one = time_asr(spec, args.device, audios, 1, args.tokens)
        many = time_asr(spec, args.device, audios, args.batch_size, args.tokens)
    name = args.asr or f"{args.shape} shape (random)"
    print(f"ASR {name}: {args.clips} clips, {seconds:.0f} s of audio, {args.tokens} tokens each")
    print(f"  one clip at a time: {seconds / one:.1f}x real time ({one:.1f} s)")
    print(f"  batched by length ({args.batch_size}): {seconds / many:.1f}x real time "
          f"({many:.1f} s); speed-up {one / many:.2f}x")
    if not args.no_dnsmos:
        from kani_adapt.scorers.quality import DNSMOS

        dnsmos = DNSMOS(args.device)
        dnsmos.score_one(audios[0], RATE)  # warm-up: librosa's numba compilation
        start = time.perf_counter()
        dnsmos.score(audios, RATE)
        spent = time.perf_counter() - start
        print(f"DNSMOS: {spent / seconds * 3600:.0f} s of compute per hour of audio "
              f"({seconds / spent:.1f}x real time)")


if __name__ == "__main__":
    main()
