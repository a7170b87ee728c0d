"""Stage embed: a 128-d speaker embedding per clip and the mean embedding per speaker.

Per-clip vectors are logged batch by batch (resumable, ``--shard I/N``). The per-speaker mean is re-normalised to
unit length like the per-clip vectors; ``embed/speakers.json`` also records how close each
speaker's clips are to their mean (a low minimum points at a mislabelled or mixed speaker).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from data_tools.records import Utterance, read_stage_results, stage_dir
from data_tools.stages.kit import BaseStage, Kept, Model, Resources
from kani_adapt.audio import read_clip
from kani_adapt.batching import id_batches
from kani_adapt.config.defaults import SPEAKER_EMBEDDER_HUB_ID, SPEAKER_EMBEDDER_TINY
from kani_adapt.config.shared import Device
from kani_adapt.config.wiring import ModelRef
from kani_adapt.core import atomic

NAME = "embed"


@dataclass
class EmbedConfig:
    model: ModelRef = SPEAKER_EMBEDDER_HUB_ID  # local directory or hub id
    batch_size: int = 8
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)

    RANGES: ClassVar[dict[str, str]] = {"batch_size": "> 0"}


def speaker_means(embs: dict[str, np.ndarray], speakers: dict[str, str]) -> dict[str, dict]:
    """{speaker: {"mean": unit vector, "clips": n, "min_cosine": worst clip vs the mean}}."""
    groups = defaultdict(list)
    for utt_id, emb in embs.items():
        groups[speakers[utt_id]].append(emb)
    out = {}
    for speaker, vectors in sorted(groups.items()):
        stack = np.stack(vectors)
        mean = stack.mean(0)
        mean = mean / (np.linalg.norm(mean) or 1.0)
        out[speaker] = {"mean": mean.astype(np.float32), "clips": len(vectors),
                        "min_cosine": float((stack @ mean).min())}
    return out


def _embed_batch(model, utts: list[Utterance], work: Path, device: str) -> dict[str, list]:
    import torch

    from kani_adapt.audio import padded
    from kani_adapt.models.speaker.embedder import prepare

    batch, lengths = padded([prepare(*read_clip(work / utt.audio)) for utt in utts])
    with torch.inference_mode():
        embs = model(batch.to(device), lengths.to(device)).float().cpu().numpy()
    return {u.id: e.round(7).tolist() for u, e in zip(utts, embs)}


class Embed(BaseStage):
    name = section = NAME
    config = EmbedConfig
    help = "128-d speaker embeddings per clip and per-speaker means"
    inputs, chain, model, device = ("filter",), False, True, "device"
    models = (Model("embed.model", "speaker embedder", given="embedder",
                    sizes=(SPEAKER_EMBEDDER_TINY,)),)

    def resources(self, cfg) -> Resources:
        return Resources(pool=True, device=cfg.embed.device)

    def settings(self, ctx) -> dict:
        # an injected model decides the results, not embed.model
        given = getattr(ctx.given.get("embedder"), "config", None)
        return {"model": ctx.cfg.embed.model,
                "given": given.to_dict() if hasattr(given, "to_dict") else given}

    def open(self, ctx) -> None:
        model = ctx.given.get("embedder")
        if model is None:
            from kani_adapt.models.speaker.embedder import load
            model = load(ctx.cfg.embed.model, ctx.cfg.embed.device)
        ctx.state["model"] = model

    def batches(self, ctx, todo: list[Utterance]) -> list[list[Utterance]]:
        size = ctx.cfg.embed.batch_size
        by_id = {u.id: u for u in todo}
        lengths = {u.id: int(min(u.duration, 30.0) * 16000) for u in todo}
        return [[by_id[i] for i in ids] for ids in id_batches(lengths, 16000 * 30 * size, size)]

    def process(self, ctx, batch: list[Utterance]) -> dict:
        embs = _embed_batch(ctx.state["model"], batch, ctx.work, ctx.cfg.embed.device)
        return {u.id: Kept([u], extra={"emb": embs[u.id]}) for u in batch}

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        accepted, rejected = super().decide(ctx, items, results)
        embs = {u.id: np.asarray(results[u.id]["extra"]["emb"], np.float32) for u in accepted}
        means = speaker_means(embs, {u.id: u.speaker for u in accepted})
        summary = {s: {"clips": m["clips"], "min_cosine_to_mean": round(m["min_cosine"], 4)}
                   for s, m in means.items()}
        atomic.write_text(stage_dir(ctx.work, NAME) / "speakers.json",
                          json.dumps(summary, indent=1))
        return accepted, rejected


def load_embeddings(work: Path) -> dict[str, np.ndarray]:
    """Per-clip embeddings from every shard's log."""
    return {k: np.asarray(r["extra"]["emb"], np.float32)
            for k, r in read_stage_results(work, NAME).items() if "emb" in r["extra"]}


STAGE = Embed()
