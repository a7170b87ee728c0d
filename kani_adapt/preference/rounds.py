"""``kani-adapt prefer``: rounds of sample -> score -> pairs -> train -> eval.

Layout of ``run_dir``::

    durations.json            the duration model of each language, fitted on the dataset
    round0/eval/              the supervised policy on the held-out prompts and voices
    roundN/sample/rollouts.parquet, roundN/score/scores.parquet, roundN/pairs/ (pairs file),
    roundN/train/ (a training run, objective dpo), roundN/export/ (merged), roundN/eval/
    summary.json              failure rates by kind per round and the round to ship

Each stage writes its output atomically and is skipped when it exists, so a rerun resumes.
Round N samples from round N-1's merged export (round 1 from ``policy``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from kani_adapt import dataset, tokens
from kani_adapt.core import atomic
from kani_adapt.preference import evaluate, prompts as prompt_sets
from kani_adapt.preference.config import PreferConfig
from kani_adapt.preference.duration import DurationModel, fit
from kani_adapt.preference.rollouts import Transcriber, VoiceMatch
from kani_adapt.preference.stages import sampled, scored
from kani_adapt.text.tags import language_of

log = logging.getLogger("kani_adapt.prefer")


def load_policy(path: str):
    from kani_adapt.models.generator.checkpoint import load_checkpoint

    generator = load_checkpoint(str(path))
    generator.model.eval()
    return generator


def voices(cfg: PreferConfig) -> tuple[dict, dict]:
    """(train pool, eval pool) of voices: the dataset's speakers, ``eval_speakers`` held out."""
    table = dataset.read(cfg.dataset)
    names = sorted(set(dataset.speakers(table)))
    pool = {n: dataset.voice(table, n) for n in names}
    if all(v is None for v in pool.values()):
        return {"none": None}, {"none": None}
    order = np.random.default_rng(cfg.sample.seed + 11).permutation(names).tolist()
    held = order[:cfg.sample.eval_speakers]
    return {n: pool[n] for n in names if n not in held}, {n: pool[n] for n in held or names}


def durations(cfg: PreferConfig, tokenizer) -> dict[str, DurationModel]:
    from kani_adapt.models.generator.tokenizer import encode_text

    path = Path(cfg.run_dir) / "durations.json"
    if path.is_file():
        return {k: DurationModel(**v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    table = dataset.read(cfg.dataset)
    by_language: dict[str, list] = {}
    for row in table:
        tag = dataset.tag(row) or cfg.prompts.tag or cfg.prompts.language
        ids = encode_text(tokenizer, dataset.text(row), tag)
        by_language.setdefault(language_of(tag), []).append(
            (len(dataset.text(row).split()), tokens.text_tokens(ids), dataset.duration(row)))
    models = {lang: fit(*map(list, zip(*rows)), language=lang) for lang, rows in by_language.items()}
    atomic.write_json(path, {k: m.identity() for k, m in models.items()})
    for lang, model in models.items():
        log.info("duration model %s: %s", lang, model.describe())
    return models


def run(cfg: PreferConfig, transcriber: Transcriber, voice_match: VoiceMatch | None = None) -> dict:
    """Every round (resuming where the run stopped); returns the summary. ``voice_match``
    measures the rollouts' voice similarity when the reward weighs it (``reward.similarity``)."""
    from kani_adapt.preference import pairs as build

    root = Path(cfg.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    policy = str(cfg.policy)
    generator = load_policy(policy)
    models = durations(cfg, generator.tokenizer)
    found = (prompt_sets.read_file(cfg.prompts.file, cfg.prompts.tag or cfg.prompts.language)
             if cfg.prompts.file else
             prompt_sets.built_in(cfg.prompts.language, cfg.prompts.tag or cfg.prompts.language))
    train_prompts, eval_prompts = prompt_sets.split(found, cfg.prompts.eval_share, cfg.sample.seed)
    train_pool, eval_pool = voices(cfg)
    evals = [evaluate.stage(root / "round0" / "eval", generator, eval_prompts, eval_pool, models,
                            transcriber, cfg, voice_match)]
    made: dict[str, dict] = {}  # each round's pair counts (listeners' pairs under "human")
    for number in range(1, cfg.rounds + 1):
        here = root / f"round{number}"
        rolled = sampled(here / "sample", generator, train_prompts, "train", train_pool, models,
                         cfg, number)
        scores, values, failed = scored(here / "score", rolled, transcriber, cfg, voice_match)
        made[f"round{number}"] = build.stage(here / "pairs", generator, policy, rolled, values,
                                             failed, cfg)
        policy = build.train_and_export(here, policy, generator, cfg)
        generator = load_policy(policy)
        evals.append(evaluate.stage(here / "eval", generator, eval_prompts, eval_pool, models,
                                    transcriber, cfg, voice_match))
    summary = evaluate.summarise(evals, cfg.tolerance)
    summary["durations"] = {k: m.describe() for k, m in models.items()}
    summary["pairs"] = made
    atomic.write_json(root / "summary.json", summary)
    return summary


def run_configured(cfg: PreferConfig) -> dict:
    """Every round with the models ``cfg`` names: the codec decodes rollouts, the recogniser
    (``reward.asr``, the tag's language forced) hears them, the speaker embedder measures their
    voices when the reward weighs them. ``kani-adapt prefer`` and a recipe's prefer stage."""
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.core.devices import resolve
    from kani_adapt.core.errors import ConfigError
    from kani_adapt.preference.rollouts import codec_transcriber, codec_voice_match
    from kani_adapt.scorers.asr import WhisperASR

    if not cfg.codec:
        raise ConfigError("codec: required to decode rollouts for the recogniser (a NanoCodec path or id)")
    device = resolve(cfg.device)
    codec = load_codec(str(cfg.codec), device)
    transcriber = codec_transcriber(codec, WhisperASR.load(str(cfg.reward.asr), device))
    matched = None
    if cfg.reward.similarity > 0:  # decodes once more and embeds with the dataset's embedder
        from kani_adapt.scorers.similarity import SpeakerSimilarity

        matched = codec_voice_match(codec, SpeakerSimilarity.load(str(cfg.reward.speaker_embedder),
                                                                  "kani", device))
    return run(cfg, transcriber, matched)
