"""Stage 6, tokenize: codec codes for every kept clip, in length-bucketed batches and shards.

Clips of similar length share a batch, so little compute goes to padding. ``shard=(i, n)`` makes
this process handle only the clips whose id hashes to ``i`` mod ``n``: n processes (or GPUs) run
independently and never write the same file. Each batch lands in its own file named by shard and
by a hash of its ids (``codes-00002-of-00008-<hash>.npz``), so runs cannot overwrite each other.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from data_tools import stage
from data_tools.batching import make_batches
from data_tools.audio import read_clip, resample
from data_tools.config import TokenizeConfig
from data_tools.records import LogEntry, StageLog, Utterance, read_jsonl, reject_utt
from kani_adapt.errors import ConfigError

NAME = "tokenize"


def shard_of(utt_id: str, n: int) -> int:
    """Stable shard of an id (independent of input order and of Python's hash seed)."""
    return int(hashlib.sha1(utt_id.encode()).hexdigest()[:8], 16) % n


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: I must be in 0..N-1")
    return i, n


def batch_file(shard: tuple[int, int], ids: list[str]) -> str:
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]
    return f"codes-{shard[0]:05d}-of-{shard[1]:05d}-{digest}.npz"


def _load(utt: Utterance, work: Path, rate: int) -> np.ndarray:
    audio, sr = read_clip(work / utt.audio)
    return resample(audio, sr, rate) if sr != rate else audio


def encode_batch(codec, audios: list[np.ndarray]) -> list[np.ndarray]:
    """Codes [num_codebooks, frames] per clip of one padded batch."""
    import torch

    lengths = torch.tensor([len(a) for a in audios])
    batch = torch.zeros(len(audios), int(lengths.max()))
    for row, audio in enumerate(audios):
        batch[row, : len(audio)] = torch.from_numpy(audio)
    with torch.inference_mode():
        codes, frames = codec.encode(batch, lengths)
    return [codes[row, :, : int(frames[row])].cpu().numpy().astype(np.int16)
            for row in range(len(audios))]


def _save(path: Path, ids: list[str], codes: list[np.ndarray]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=np.array(ids), **{f"c{i}": c for i, c in enumerate(codes)})
    os.replace(tmp, path)


def _run_batch(codec, ids, by_id, work, shard, folder) -> LogEntry:
    audios = [_load(by_id[i], work, codec.sample_rate) for i in ids]
    codes = encode_batch(codec, audios)
    good = [(i, c) for i, c in zip(ids, codes) if c.shape[1] > 0]
    name = batch_file(shard, ids)
    _save(folder / name, [i for i, _ in good], [c for _, c in good])
    empty = [reject_utt(by_id[i], NAME, "no_frames", "the codec returned no frames")
             for i, c in zip(ids, codes) if c.shape[1] == 0]
    return LogEntry(ids, out=[by_id[i].to_dict() for i, _ in good], rejected=empty,
                    extra={"file": name})


def all_entries(work: Path) -> list[LogEntry]:
    folder = stage.stage_dir(work, NAME)
    return [LogEntry(**d) for log in sorted(folder.glob("log-*.jsonl")) for d in read_jsonl(log)]


def run(cfg: TokenizeConfig, work: Path, inputs: list[Utterance], codec,
        shard: tuple[int, int] = (0, 1), max_rejected_fraction: float = 0.5) -> list[Utterance]:
    """Tokenize this shard's clips with ``codec`` (any object with the Codec protocol)."""
    from kani_adapt.console import progress

    work = Path(work)
    settings = {"codec": cfg.codec, "codec_class": type(codec).__name__,
                "rate": codec.sample_rate}
    log = stage.open_log(work, NAME, settings, f"log-{shard[0]:05d}-of-{shard[1]:05d}.jsonl")
    done = {i for e in all_entries(work) for i in e.inputs}
    by_id = {u.id: u for u in inputs}
    mine = {u.id: int(round(u.duration * codec.sample_rate)) for u in inputs
            if u.id not in done and shard_of(u.id, shard[1]) == shard[0]}
    budget = int(cfg.batch_seconds * codec.sample_rate)
    batches = make_batches(mine, budget, cfg.max_batch_size)
    for ids in progress(batches, desc="tokenize", unit="batch"):
        log.append(_run_batch(codec, ids, by_id, work, shard, log.path.parent))
    entries = [e for e in all_entries(work) if set(e.inputs) <= set(by_id)]
    accepted, rejected = stage.collect(entries)
    return stage.finish(work, NAME, accepted, rejected, len(inputs), max_rejected_fraction)


def load_codes(work: Path) -> dict[str, np.ndarray]:
    """{id: codes [num_codebooks, frames]} from every finished batch of every shard."""
    out = {}
    for entry in all_entries(Path(work)):
        with np.load(stage.stage_dir(work, NAME) / entry.extra["file"]) as data:
            for i, utt_id in enumerate(data["ids"].tolist()):
                out[utt_id] = data[f"c{i}"].astype(np.int64)
    return out
