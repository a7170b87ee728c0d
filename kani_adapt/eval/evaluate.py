"""``run_eval``: the whole evaluation of one or more checkpoints into an output folder.

out/eval.json, out/eval.md, out/utterances.parquet, out/codes.parquet (each clip's codes and
voice: ``kani_adapt.eval.spoken``), out/wavs/<checkpoint>/<item>_s<k>.wav,
out/wavs/recording/<reference>.wav (reference files, at the codec's rate), out/index.html (every
utterance with players; ``kani_adapt.eval.page``), out/tensorboard (scalars per checkpoint and
metric, audio of the first samples).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from kani_adapt.core import console
from kani_adapt.eval import page, report
from kani_adapt.eval.config import EvalConfig
from kani_adapt.eval.evalset import EvalItem
from kani_adapt.eval.probes import is_probe, probe_items, summary as probe_summary
from kani_adapt.eval import judges, protocol, spoken
from kani_adapt.eval.run import (CODEC_CEILING, RECORDING_WAVS, RECORDINGS_ROW, codec_ceiling,
                                 conditioning, evaluate_checkpoint, first_by_reference,
                                 load_references, recordings)
from kani_adapt.scorers.registry import Scorers, derived_metrics
from kani_adapt.text.tags import facts

TB_AUDIO_CLIPS = 4  # clips per checkpoint written to TensorBoard (all go to wavs/)


def checkpoint_names(checkpoints: list[str]) -> list[str]:
    """Short unique names: the folder name, numbered when two are equal."""
    names = []
    for c in checkpoints:
        base = Path(c.rstrip("/")).name or c
        name, k = base, 2
        while name in names or name in (CODEC_CEILING, RECORDING_WAVS, RECORDINGS_ROW):
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def run_eval(checkpoint: str, items: list[EvalItem], cfg: EvalConfig, out: Path,
             compare: list[str] = (), eval_set: str = "", known_tags: list[str] = ()) -> dict:
    """Generate, decode and score ``items``; one eval at a time writes ``out``.
    ``known_tags``: the tags training saw, so the report says which were not evaluated. Each
    tag's facts (``cfg.tags``, its language resolved) are kept in eval.json: the listening test
    reads its description and language from there."""
    from kani_adapt.core.locks import hold_output
    from kani_adapt.eval.kept import kept_line, set_aside

    with hold_output(Path(out), "kani-adapt eval"):
        moved = set_aside(Path(out))
        if moved is not None:
            logging.getLogger("kani_adapt.eval").warning("%s", kept_line(out, moved))
        with console.working("eval"):
            return _run_eval(checkpoint, items, cfg, out, compare, eval_set, list(known_tags))


def _run_eval(checkpoint: str, items: list[EvalItem], cfg: EvalConfig, out: Path,
              compare: list[str], eval_set: str, known_tags: list[str]) -> dict:
    import pandas as pd

    from kani_adapt.core.atomic import write_audio, write_file
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.core.devices import resolve

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve(cfg.device)
    console.doing(f"loading the codec {cfg.codec}")
    codec = load_codec(cfg.codec, device)
    console.doing("loading the scorers")
    scorers = Scorers(cfg.scorers, device, cfg.tags, cfg.protocol)
    console.doing(f"reading and embedding the references of {len(items)} items")
    refs = load_references(items, codec, scorers)
    console.doing("scoring the recordings and the codec's round trips")
    checkpoints = [checkpoint, *compare]
    names = checkpoint_names(checkpoints)
    audio_log: dict[str, list] = {}

    def keep(key: str, audio: np.ndarray) -> None:
        if cfg.write_wavs and audio.size:
            write_audio(out / "wavs" / f"{key}.wav", np.clip(audio, -1, 1), codec.sample_rate)
        bucket = audio_log.setdefault(key.split("/")[0], [])
        if len(bucket) < TB_AUDIO_CLIPS:
            bucket.append((key, audio))

    rows = recordings(items, refs, codec, scorers) + codec_ceiling(items, refs, codec, scorers)
    for row, (key, item) in zip(rows[len(rows) // 2:], first_by_reference(items).items()):
        keep(f"{CODEC_CEILING}/{row['item']}", refs.roundtrip[key])
        if item.reference is not None and cfg.write_wavs:  # a dataset's recording is its codes
            write_audio(out / "wavs" / RECORDING_WAVS / f"{row['item']}.wav",
                        np.clip(refs.audio[key], -1, 1), codec.sample_rate)
    probes, unprobed = probe_items(items, refs.embedding, cfg.tags) if cfg.short_probes else ([], [])
    say, begun = logging.getLogger("kani_adapt.progress").info, time.time()
    # The voices, fixed once: every checkpoint speaks each item with the same speaker embedding,
    # so what differs between them (the accent shift above all) is not the voice's
    voices = conditioning(items + probes, refs)
    codes: list = []  # what each clip was made of (codes.parquet: listeners' pairs learn from it)
    for k, (name, ckpt) in enumerate(zip(names, checkpoints)):
        say("eval: checkpoint %d/%d (%s): %d items + %d short probes x %d samples", k + 1,
            len(names), name, len(items), len(probes), cfg.samples)
        console.doing(f"evaluating checkpoint {k + 1}/{len(names)} ({name})")
        rows += evaluate_checkpoint(name, ckpt, items + probes, refs, codec, scorers, cfg, device,
                                    voices, keep, codes.append)
        left = (time.time() - begun) / (k + 1) * (len(names) - k - 1)
        say("eval: checkpoint %d/%d (%s) done; ETA %.0f s", k + 1, len(names), name, left)
    console.doing(f"summarising {len(rows)} rows ({cfg.resamples} bootstrap resamples)")
    every = protocol.add_derived(pd.DataFrame(rows), refs.anchors)
    df = every[~every["item"].astype(str).map(is_probe)]  # the probes are reported apart
    metrics = [m for m in [*scorers.names(), *derived_metrics(cfg.scorers)] if m in df]
    summary = report.summarise(df, metrics, cfg.resamples)
    for name, rates in protocol.corpus_rates(df, cfg.resamples).items():
        summary[name].update(rates)
    comparisons = {f"{names[0]} vs {other}": report.compare(df, names[0], other, metrics, cfg.resamples)
                   for other in names[1:]}
    same_voice = {f"{names[0]} vs {other}": judges.same_voice(df, names[0], other, cfg.resamples)
                  for other in names[1:]}
    verdicts = [report.verdict(n, summary[n], {o: comparisons[f"{names[0]} vs {o}"] for o in names[1:]}
                               if n == names[0] else {}, refs.anchors, summary.get(RECORDINGS_ROW))
                for n in names]
    result = {"eval_set": eval_set, "items": len(items), "samples": cfg.samples,
              "checkpoints": dict(zip(names, checkpoints)), "codec": cfg.codec, "metrics": metrics,
              "anchors": {n: report.anchor_record(n, a) for n, a in refs.anchors.items()},
              "summary": summary, "comparisons": comparisons,
              "prompt_length": protocol.by_prompt_length(every),
              "short_probes": {"by_checkpoint": probe_summary(every), "without": unprobed},
              "verdicts": verdicts, "tags": facts({i.tag or "" for i in items}, cfg.tags),
              "coverage": report.coverage(items, known_tags),
              "same_voice": {pair: v for pair, v in same_voice.items() if v},
              "not_measured": judges.not_measured(df)}
    if cfg.protocol == "msbench":
        result["protocol"] = {"name": "msbench", "checkpoints": protocol.msbench_section(df)}
    console.doing("writing the report and its page")
    write_file(out / "utterances.parquet", lambda tmp: every.to_parquet(tmp, index=False))
    spoken.write(out, codes)
    report.write_json(out / "eval.json", result)
    report.write_markdown(out / "eval.md", result)
    page.write_index(out)
    _tensorboard(out / "tensorboard", summary, audio_log, codec.sample_rate)
    return result


def _tensorboard(folder: Path, summary: dict, audio: dict, rate: int) -> None:
    import math

    import torch
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    try:
        for name, per in summary.items():
            for metric, s in per.items():
                if s["all"]["n"] and not math.isnan(s["all"]["mean"]):
                    writer.add_scalar(f"eval/{metric}/{name}", s["all"]["mean"], 0)
        for clips in audio.values():
            for key, a in clips:
                if a.size:
                    writer.add_audio(key, torch.from_numpy(np.clip(a, -1, 1))[None], 0, sample_rate=rate)
    finally:
        writer.close()
