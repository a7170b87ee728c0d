"""Builders for data-tools tests: espeak-ng speech, planted bad files, a tiny deterministic codec."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mfa-espeak-en"  # real MFA output


def espeak(text: str, voice: str = "en", speed: int = 160) -> tuple[np.ndarray, int]:
    """Speech from espeak-ng as float32 mono (22050 Hz)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text],
                       check=True, capture_output=True)
        audio, rate = sf.read(out, dtype="float32")
    return audio, rate


def with_silence(audio: np.ndarray, rate: int, before: float, after: float, seed: int = 0):
    """Pad with quiet noise (a real room is never digitally silent)."""
    rng = np.random.default_rng(seed)
    pad = lambda s: (rng.standard_normal(int(s * rate)) * 1e-4).astype(np.float32)  # noqa: E731
    return np.concatenate([pad(before), audio, pad(after)])


def write(path: Path, audio: np.ndarray, rate: int, text: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, **kw)
    if text is not None:
        path.with_suffix(".txt").write_text(text, encoding="utf-8")
    return path


SENTENCES = [
    "the little boat sailed across the quiet lake",
    "she bought fresh bread at the market this morning",
    "rain is expected over the hills tomorrow afternoon",
    "please close the window before you leave the room",
]


def good_clip(path: Path, i: int, voice: str = "en", rate: int = 22050) -> Path:
    audio, sr = espeak(SENTENCES[i % len(SENTENCES)], voice=voice)
    audio = with_silence(audio, sr, 0.3, 0.3, seed=i)
    if rate != sr:
        import soxr
        audio = soxr.resample(audio, sr, rate)
    return write(path, audio, rate, SENTENCES[i % len(SENTENCES)])


def plant_bad_files(root: Path, outside: Path) -> dict[str, str]:
    """Bad inputs under ``root/bad``; returns {file stem: expected rejection reason}."""
    bad = root / "bad"
    bad.mkdir(parents=True)
    speech, sr = espeak(SENTENCES[0])
    (bad / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (bad / "corrupt.txt").write_text("hello")
    (bad / "zero.wav").write_bytes(b"")
    (bad / "zero.txt").write_text("hello")
    nan = speech.copy()
    nan[100:200] = np.nan
    write(bad / "nan.wav", nan, sr, "hello there", subtype="FLOAT")
    write(bad / "notext.wav", speech, sr)
    write(bad / "emptytext.wav", speech, sr, "   ")
    write(bad / "latin1.wav", speech, sr)
    (bad / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    write(outside / "secret.wav", speech, sr, "secret words")
    (bad / "escape.wav").symlink_to(outside / "secret.wav")
    (bad / "escape.txt").write_text("secret words")
    return {"corrupt": "unreadable_audio", "zero": "empty_audio", "nan": "nan_samples",
            "notext": "missing_transcript", "emptytext": "empty_transcript",
            "latin1": "transcript_not_utf8", "escape": "outside_input_folder"}


class EnergyCodec:
    """A deterministic codec implementing the Codec protocol, for tests and benchmarks of the
    data tools: each 1764-sample frame becomes 4 codes (log energy of four frequency bands,
    quantised). Its cost grows with the padded batch length, like a real convolutional codec."""

    sample_rate = 22050
    samples_per_frame = 1764
    num_codebooks = 4
    codebook_size = 4032

    def __init__(self):
        self.calls: list[tuple[int, int]] = []  # (batch size, padded samples) per encode

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor):
        self.calls.append(tuple(audio.shape))
        spf = self.samples_per_frame
        frames = (lengths + spf - 1) // spf
        n = int(frames.max()) if len(frames) else 0
        padded = torch.nn.functional.pad(audio, (0, n * spf - audio.shape[1]))
        spec = torch.fft.rfft(padded.reshape(len(audio), n, spf), dim=-1).abs() ** 2
        bands = torch.stack([b.sum(-1) for b in spec.chunk(4, dim=-1)], dim=1)  # [B, 4, F]
        codes = ((torch.log10(bands + 1e-9) + 9) * 200).round().clamp(0, 4031).long()
        mask = torch.arange(n)[None, :] < frames[:, None]
        return codes * mask[:, None, :], frames

    def decode(self, codes: torch.Tensor, frames: torch.Tensor):
        spf = self.samples_per_frame
        level = 10 ** (codes.float().mean(1) / 200 - 9)
        audio = level.sqrt().repeat_interleave(spf, dim=1) * 1e-3
        return audio, frames * spf


def run_stage(name: str, work: Path, inputs=None, budget: float = 0.5, shard=(0, 1), given=None,
              **sections):
    """One stage through the runner, with a DataConfig of the given sections; its kept items
    (the dataset folder for write)."""
    from data_tools.config import DataConfig
    from data_tools.runner import run_stage as run

    cfg = DataConfig(work=str(work), max_rejected_fraction=budget, **sections)
    outcome = run(name, cfg, shard, given, inputs)
    return outcome.out if name == "write" else outcome.kept
