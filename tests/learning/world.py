"""The learning tests' world: espeak-ng speech turned into real tiny-codec codes and tiny-embedder
voices, small datasets of it, and the real commands (train, export, generate) run on them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kani_adapt import dataset, tokens
from kani_adapt.core import espeak
from kani_adapt.cli.main import main
from kani_adapt.recipes.learning import MEMORISING, frames_exact


@dataclass(frozen=True)
class Line:
    text: str
    tag: str
    voice: str  # espeak-ng voice that speaks it
    speaker: str  # whose speaker embedding conditions it
    said: str = ""  # what the recording says, when it is not `text` (a mislabelled row)

    @property
    def audio(self) -> np.ndarray:
        return spoken(self.said or self.text, self.voice)


@lru_cache(maxsize=None)
def codec():
    from kani_adapt.codec.registry import load_codec

    return load_codec("tiny")


@lru_cache(maxsize=None)
def embedder():
    from kani_adapt.models.speaker import embedder as speaker_embedder

    return speaker_embedder.load(speaker_embedder.TINY)


@lru_cache(maxsize=None)
def spoken(text: str, voice: str) -> np.ndarray:
    return espeak.speak(text, voice)


def encode(audio: np.ndarray) -> np.ndarray:
    """(frames, 4) codes of one clip, as the tokenize stage computes them."""
    import torch

    x = torch.from_numpy(audio)[None]
    codes, frames = codec().encode(x, torch.tensor([len(audio)]))
    return codes[0, :, : int(frames[0])].T.numpy()


def decode(codes: np.ndarray) -> np.ndarray:
    """The tiny codec's waveform of (frames, 4) codes, as `generate --codec` writes it."""
    from kani_adapt.models.generator.synthesize import decode_one

    return decode_one(codec(), codes)


def voices(lines: list[Line]) -> dict[str, np.ndarray]:
    """Each speaker's embedding: the tiny embedder's mean over that speaker's clips, re-normalised."""
    out = {}
    for speaker in sorted({line.speaker for line in lines}):
        clips = [line.audio for line in lines if line.speaker == speaker]
        mean = embedder().embed(clips, espeak.SAMPLE_RATE).mean(0)
        out[speaker] = (mean / np.linalg.norm(mean)).astype(np.float32)
    return out


def rows(lines: list[Line], voice: dict[str, np.ndarray]) -> list[dict]:
    """Dataset rows (the data tools' columns); codes as encoded (no frames dropped)."""
    out = []
    for i, line in enumerate(lines):
        audio = line.audio
        out.append(dataset.make_row(line.text, line.tag, encode(audio), line.speaker,
                                    voice[line.speaker], voice[line.speaker],
                                    len(audio) / espeak.SAMPLE_RATE, f"espeak/{line.voice}/{i}"))
    return out


def codes_of(row: dict, drop_repeats: bool = True) -> np.ndarray:
    codes = dataset.codes(row)
    return tokens.drop_repeated_frames(codes) if drop_repeats else codes


def write_dataset(table: list[dict], folder: Path) -> Path:
    dataset.to_table(table).save_to_disk(str(folder))
    return folder


def train(run_dir: Path, data: Path, init: str, mode: str, steps: int, lr: float, **extra) -> dict:
    """``kani-adapt train`` on the CPU with the settings that memorise a handful of rows (the
    recipes' learn stage trains with them too)."""
    values = {
        "run_dir": run_dir, "data.train": data, "model.init": init, "mode": mode,
        "trainer.device": "cpu", "trainer.precision": "32-true", "trainer.max_steps": steps,
        "trainer.val_every": steps, "trainer.ckpt_every": steps, "trainer.log_every": steps,
        "optim.lr": lr, "trainer.seed": 0, **MEMORISING, **extra,
    }
    assert main(["train", *[f"{k}={v}" for k, v in values.items()]]) == 0
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def export(run_dir: Path, out: Path) -> Path:
    assert main(["export", str(run_dir), "--out", str(out), "--merge", "--dtype", "fp32"]) == 0
    return out


def speaker_file(row: dict, folder: Path) -> Path:
    path = folder / f"{row['speaker']}.npy"
    np.save(path, dataset.speaker_embedding(row))
    return path


def generate(checkpoint: Path, row: dict, folder: Path, tag: str | None = None,
             speaker: dict | None = None, codec: str | None = None) -> np.ndarray:
    """Greedy ``kani-adapt generate`` of a row's text (its own tag and speaker unless given)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"gen_{len(list(folder.glob('gen_*.npy'))):03d}.npy"
    args = ["generate", str(checkpoint), "--text", row["text"], "--tag", tag or row["tag"],
            "--speaker-emb", str(speaker_file(speaker or row, folder)), "--out", str(out),
            "--temperature", "0", "--repetition-penalty", "1", "--max-frames", "80",
            "--device", "cpu"]
    if codec:
        args += ["--codec", codec]
    assert main(args) == 0
    return np.load(out)


def frame_accuracy(generated: np.ndarray, reference: np.ndarray) -> float:
    """Share of the reference's frames generated exactly, at the same index (missing = wrong)."""
    return frames_exact(generated, reference) / len(reference)


def least_likely(checkpoint: Path, row: dict, speaker: dict | None = None) -> float:
    """The smallest probability the exported model gives any of ``row``'s audio and end tokens,
    read teacher-forced under the row's text and tag and ``speaker``'s embedding (its own unless
    given). A row memorised through its conditioning is near 1 everywhere; two rows that the
    model cannot tell apart share probability at the frame where they part."""
    import torch

    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.tokenizer import encode_text
    from kani_adapt.training.losses import shift_labels, token_losses

    loaded = load_checkpoint(str(checkpoint))
    model, tokenizer = loaded.model, loaded.tokenizer
    ex = tokens.build_example(encode_text(tokenizer, row["text"], row["tag"]), codes_of(row))
    ids = torch.tensor([ex.input_ids])
    labels = torch.tensor([ex.labels])
    labels[0, : ex.input_ids.index(tokens.START_OF_SPEECH) + 1] = tokens.IGNORE_INDEX
    emb = torch.from_numpy(dataset.speaker_embedding(speaker or row)).float()[None]
    with torch.no_grad():
        logits = model(input_ids=ids, speaker_emb=emb, use_cache=False).logits
    slot = torch.full_like(labels[:, :1], tokens.IGNORE_INDEX)
    labels = torch.cat([labels[:, :1], slot, labels[:, 1:]], dim=1)  # the speaker slot
    losses = token_losses(logits, labels)
    return float(torch.exp(-losses[shift_labels(labels) != tokens.IGNORE_INDEX]).min())
