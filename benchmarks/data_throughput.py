"""Data-tools throughput: silero-vad speed (x real time) and codec tokenization of
length-bucketed batches vs one clip at a time (the upstream way), on this machine, in one run.

    python benchmarks/data_throughput.py [--clips 48] [--vad-seconds 120] [--codec conv]

The codec is a stand-in implementing ``kani_adapt.codec.protocol.Codec``: a strided convolutional
encoder with NanoCodec's frame layout (downsampling 2*3*6*7*7 = 1764, 4 codebooks of 4032) and
random weights, so its cost grows with the padded length like the real encoder's. The figures
for the real NanoCodec come from the same script once its loader plugs into
``kani_adapt/codec/registry.py`` (``--codec nano``). Timings are printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kani_adapt.batching import id_batches  # noqa: E402
from data_tools.stages.tokenize import encode_batch  # noqa: E402

RATE = 22050


class ConvCodec(torch.nn.Module):
    """Random strided conv encoder + 4 rounded groups: NanoCodec's shapes, not its quality."""

    sample_rate, samples_per_frame, num_codebooks, codebook_size = RATE, 1764, 4, 4032

    def __init__(self, width: int = 32):
        super().__init__()
        torch.manual_seed(0)
        layers, channels = [], 1
        for i, stride in enumerate((2, 3, 6, 7, 7)):
            out = width * 2 ** min(i, 3)
            layers += [torch.nn.Conv1d(channels, out, 2 * stride + 1, stride, padding=stride),
                       torch.nn.ELU()]
            channels = out
        self.net = torch.nn.Sequential(*layers, torch.nn.Conv1d(channels, 4, 1))

    @torch.inference_mode()
    def encode(self, audio, lengths):
        spf = self.samples_per_frame
        frames = (lengths + spf - 1) // spf
        pad = int(frames.max()) * spf - audio.shape[1]
        latent = self.net(torch.nn.functional.pad(audio, (0, pad))[:, None, :])
        latent = latent[..., : int(frames.max())]
        codes = ((torch.tanh(latent) + 1) / 2 * (self.codebook_size - 1)).round().long()
        return codes, frames

    def decode(self, codes, frames):
        return torch.zeros(len(codes), codes.shape[-1] * self.samples_per_frame), frames * 1764


def espeak_speech(seconds: float) -> np.ndarray:
    """Sentences with pauses from espeak-ng, at 16 kHz, about ``seconds`` long."""
    import soundfile as sf
    import soxr

    text = ("The river ran quietly past the old mill. Nobody had worked there for years. "
            "On summer evenings children came to fish from the broken wall. ")
    parts, total = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True)
        audio, sr = sf.read(out, dtype="float32")
    audio = soxr.resample(audio, sr, 16000).astype(np.float32)
    while total < seconds:
        parts += [audio, np.zeros(8000, np.float32)]
        total += len(audio) / 16000 + 0.5
    return np.concatenate(parts)


def bench_vad(seconds: float) -> tuple[float, float]:
    from data_tools.stages.segment import SegmentConfig
    from data_tools.stages.segment import silero_vad

    audio = espeak_speech(seconds)
    vad = silero_vad(SegmentConfig())
    vad(audio[:16000])  # warm-up
    start = time.perf_counter()
    spans = vad(audio)
    wall = time.perf_counter() - start
    if not spans:
        raise SystemExit("silero-vad found no speech in the espeak-ng audio")
    return len(audio) / 16000, wall


def bench_tokenize(codec, n_clips: int, batch_seconds: float, max_batch: int):
    rng = np.random.default_rng(0)
    clips = {f"c{i}": (rng.standard_normal(int(rng.uniform(2, 15) * RATE)) * 0.1)
             .astype(np.float32) for i in range(n_clips)}
    encode_batch(codec, [clips["c0"]])  # warm-up
    start = time.perf_counter()
    for clip in clips.values():
        encode_batch(codec, [clip])
    single = time.perf_counter() - start
    batches = id_batches({k: len(v) for k, v in clips.items()},
                           int(batch_seconds * RATE), max_batch)
    start = time.perf_counter()
    for ids in batches:
        encode_batch(codec, [clips[i] for i in ids])
    batched = time.perf_counter() - start
    audio = sum(len(v) for v in clips.values()) / RATE
    return audio, single, batched, len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--vad-seconds", type=float, default=120.0)
    parser.add_argument("--batch-seconds", type=float, default=160.0)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--codec", choices=["conv", "nano"], default="conv")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    seconds, wall = bench_vad(args.vad_seconds)
    print(f"VAD (silero-vad, 16 kHz): {seconds:.0f} s of audio in {wall:.2f} s = "
          f"{seconds / wall:.0f}x real time")
    if args.codec == "nano":
        from kani_adapt.codec.registry import load_codec
        # Full-size NanoCodec shape with random weights: the cost does not depend on the weights
        # (the released checkpoint loads the same way by hub id where the hub is reachable).
        codec = load_codec("0.6kbps")
    else:
        codec = ConvCodec()
    audio, single, batched, n = bench_tokenize(codec, args.clips, args.batch_seconds,
                                               args.max_batch)
    print(f"tokenize with {type(codec).__name__}: {args.clips} clips, {audio:.0f} s of audio")
    print(f"  one clip at a time: {single:.2f} s ({audio / single:.1f}x real time)")
    print(f"  length-bucketed, {n} batches: {batched:.2f} s ({audio / batched:.1f}x real time)")
    print(f"  speed-up of bucketed batches: {single / batched:.2f}x")


if __name__ == "__main__":
    main()
