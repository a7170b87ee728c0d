"""Stage 5, embed: a 128-d speaker embedding per clip and the mean embedding per speaker.

Per-clip vectors are logged batch by batch (resumable). The per-speaker mean is re-normalised to
unit length like the per-clip vectors; ``embed/speakers.json`` also records how close each
speaker's clips are to their mean (a low minimum points at a mislabelled or mixed speaker).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from data_tools import stage
from data_tools.audio import read_clip, resample
from data_tools.batching import make_batches
from data_tools.config import EmbedConfig
from data_tools.records import LogEntry, Utterance, write_text_atomic

NAME = "embed"


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

    from kani_adapt.models.speaker.embedder import MAX_SECONDS, SAMPLE_RATE

    audios = []
    for utt in utts:
        audio, rate = read_clip(work / utt.audio)
        audios.append(resample(audio, rate, SAMPLE_RATE)[: int(MAX_SECONDS * SAMPLE_RATE)])
    lengths = torch.tensor([len(a) for a in audios])
    batch = torch.zeros(len(audios), int(lengths.max()))
    for row, audio in enumerate(audios):
        batch[row, : len(audio)] = torch.from_numpy(audio)
    with torch.inference_mode():
        embs = model(batch.to(device), lengths.to(device)).float().cpu().numpy()
    return {u.id: e.round(7).tolist() for u, e in zip(utts, embs)}


def run(cfg: EmbedConfig, work: Path, inputs: list[Utterance], model=None,
        max_rejected_fraction: float = 0.5) -> list[Utterance]:
    """Embed every clip with ``model`` (default: ``speaker_embedder.load(cfg.model)``)."""
    from kani_adapt.console import progress

    work = Path(work)
    given = getattr(model, "config", None)  # an injected model decides the results, not cfg.model
    given = given.to_dict() if hasattr(given, "to_dict") else given
    log = stage.open_log(work, NAME, {"model": cfg.model, "given": given})
    done = log.done()
    todo = {u.id: u for u in inputs if u.id not in done}
    if todo and model is None:
        from kani_adapt.models.speaker.embedder import load
        model = load(cfg.model, cfg.device)
    lengths = {i: int(min(u.duration, 30.0) * 16000) for i, u in todo.items()}
    for ids in progress(make_batches(lengths, 16000 * 30 * cfg.batch_size, cfg.batch_size),
                    desc="embed", unit="batch"):
        embs = _embed_batch(model, [todo[i] for i in ids], work, cfg.device)
        log.append(LogEntry(ids, out=[todo[i].to_dict() for i in ids], extra={"emb": embs}))
    wanted = {u.id for u in inputs}
    entries = [e for e in log.entries() if set(e.inputs) <= wanted]
    accepted, rejected = stage.collect(entries)
    embs, _ = load_embeddings(work, entries)
    means = speaker_means(embs, {u.id: u.speaker for u in accepted})
    summary = {s: {"clips": m["clips"], "min_cosine_to_mean": round(m["min_cosine"], 4)}
               for s, m in means.items()}
    write_text_atomic(stage.stage_dir(work, NAME) / "speakers.json", json.dumps(summary, indent=1))
    return stage.finish(work, NAME, accepted, rejected, len(inputs), max_rejected_fraction)


def load_embeddings(work: Path, entries=None) -> tuple[dict[str, np.ndarray], dict]:
    """Per-clip embeddings, and the raw log entries they came from."""
    if entries is None:
        entries = stage.read_log(work, NAME)
    embs = {k: np.asarray(v, np.float32) for e in entries for k, v in e.extra["emb"].items()}
    return embs, entries
