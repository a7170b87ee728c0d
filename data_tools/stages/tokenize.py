"""Stage tokenize: codec codes for every kept clip, in length-bucketed batches and shards.

Clips of similar length share a batch, so little compute goes to padding. ``shard=(i, n)`` makes
this process handle only the clips whose id hashes to ``i`` mod ``n``: n processes (or GPUs) run
independently and never write the same file. Each batch lands in its own file named by shard and
by a hash of its ids (``codes-00002-of-00008-<hash>.npz``), so runs cannot overwrite each other.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from data_tools.records import Utterance, read_stage_results, stage_dir
from data_tools.stages.kit import BaseStage, Kept, Model, Rejected, Resources
from kani_adapt.audio import padded, read_clip, resample
from kani_adapt.batching import id_batches
from kani_adapt.config.defaults import NANOCODEC_HUB_ID
from kani_adapt.config.shared import Device
from kani_adapt.config.wiring import ModelRef
from kani_adapt.core import atomic
from kani_adapt.core.atomic import write_file

NAME = "tokenize"


@dataclass
class TokenizeConfig:
    codec: ModelRef = NANOCODEC_HUB_ID  # .nemo, hub id or size; see kani_adapt/codec/registry.py
    # Padded audio per batch (clips of similar length share one). Sized for a GPU; on a CPU
    # batching does not pay (benchmarks/README.md): use about 30 s and 4 clips there.
    batch_seconds: float = 160.0
    max_batch_size: int = 32
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)

    RANGES: ClassVar[dict[str, str]] = {"batch_seconds": "> 0", "max_batch_size": "> 0"}


def batch_file(shard: tuple[int, int], ids: list[str]) -> str:
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]
    return f"codes-{shard[0]:05d}-of-{shard[1]:05d}-{digest}.npz"


def _load(utt: Utterance, work: Path, rate: int) -> np.ndarray:
    audio, sr = read_clip(work / utt.audio)
    return resample(audio, sr, rate) if sr != rate else audio


def encode_batch(codec, audios: list[np.ndarray]) -> list[np.ndarray]:
    """Codes [num_codebooks, frames] per clip of one padded batch."""
    import torch

    batch, lengths = padded(audios)
    with torch.inference_mode():
        codes, frames = codec.encode(batch, lengths)
    return [codes[row, :, : int(frames[row])].cpu().numpy().astype(np.int16)
            for row in range(len(audios))]


def _save(path: Path, ids: list[str], codes: list[np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: numpy adds no .npz to the name
            np.savez(fh, ids=np.array(ids), **{f"c{i}": c for i, c in enumerate(codes)})

    write_file(path, write)


class Tokenize(BaseStage):
    name = section = NAME
    config = TokenizeConfig
    help = "codec codes in length-bucketed batches (--shard I/N for parallel runs)"
    inputs, chain, model, device = ("filter",), False, True, "device"
    models = (Model("tokenize.codec", "codec", codec=True),)

    def resources(self, cfg) -> Resources:
        return Resources(pool=True, device=cfg.tokenize.device)

    def settings(self, ctx) -> dict:
        return {"codec": ctx.cfg.tokenize.codec}

    def open(self, ctx) -> None:
        from kani_adapt.codec.registry import load_codec  # where every caller gets its codec

        codec = load_codec(ctx.cfg.tokenize.codec, ctx.cfg.tokenize.device)
        ctx.state["codec"] = codec
        atomic.write_text(stage_dir(ctx.work, NAME) / "codec.json", json.dumps(
            {"codec": ctx.cfg.tokenize.codec, "codec_class": type(codec).__name__,
             "sample_rate": codec.sample_rate}, indent=1))

    def batches(self, ctx, todo: list[Utterance]) -> list[list[Utterance]]:
        cfg, rate = ctx.cfg.tokenize, ctx.state["codec"].sample_rate
        by_id = {u.id: u for u in todo}
        lengths = {u.id: int(round(u.duration * rate)) for u in todo}
        return [[by_id[i] for i in ids] for ids in
                id_batches(lengths, int(cfg.batch_seconds * rate), cfg.max_batch_size)]

    def process(self, ctx, batch: list[Utterance]) -> dict:
        codec = ctx.state["codec"]
        ids = [u.id for u in batch]
        codes = encode_batch(codec, [_load(u, ctx.work, codec.sample_rate) for u in batch])
        good = [(i, c) for i, c in zip(ids, codes) if c.shape[1] > 0]
        name = batch_file(ctx.shard, ids)
        _save(stage_dir(ctx.work, NAME) / name, [i for i, _ in good], [c for _, c in good])
        return {u.id: Kept([u], extra={"file": name}) if c.shape[1] > 0 else
                Rejected("no_frames", "the codec returned no frames") for u, c in zip(batch, codes)}


def load_codes(work: Path) -> dict[str, np.ndarray]:
    """{id: codes [num_codebooks, frames]} from every shard, each id from the batch file its
    first log record names (a batch written twice by two runs is read once)."""
    files: dict[str, list[str]] = {}
    for utt_id, result in read_stage_results(work, NAME).items():
        if "file" in result["extra"]:
            files.setdefault(result["extra"]["file"], []).append(utt_id)
    out = {}
    for name, wanted in files.items():
        with np.load(stage_dir(work, NAME) / name) as data:
            index = {utt_id: i for i, utt_id in enumerate(data["ids"].tolist())}
            for utt_id in wanted:
                out[utt_id] = data[f"c{index[utt_id]}"].astype(np.int64)
    return out


STAGE = Tokenize()
