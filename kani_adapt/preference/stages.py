"""The sample and score stages on disk: each writes its table once and reads it back on a rerun."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kani_adapt import tokens
from kani_adapt.preference import reward as rewards, store
from kani_adapt.preference.config import PreferConfig
from kani_adapt.preference.rollouts import Transcriber, plan, sample
from kani_adapt.scorers.text import error_rates
from kani_adapt.text.tags import language_of


def score(rollouts, transcriber: Transcriber, cfg: PreferConfig):
    heard = transcriber([r.codes for r in rollouts], [r.prompt.tag for r in rollouts])
    scores, values, failed = [], [], []
    for r, text in zip(rollouts, heard):
        rates = error_rates(r.prompt.text, text, language_of(r.prompt.tag))
        s = rewards.Score(text, rates.wer, rates.cer, len(r.codes) / tokens.FRAMES_PER_SECOND,
                          r.expected, r.truncated)
        scores.append(s)
        values.append(rewards.reward(s, cfg.reward))
        failed.append(rewards.failures(s, cfg.reward, cfg.pairs))
    return scores, values, failed


def sampled(folder: Path, generator, prompts, split, pool, models, cfg: PreferConfig, seed: int):
    path = folder / "rollouts.parquet"
    if path.is_file():
        return store.read_rollouts(path)
    rng = np.random.default_rng(cfg.sample.seed + seed)
    found = plan(generator, prompts, split, pool, models, cfg.sample, rng)
    sample(generator, found, cfg.sample, seed)
    store.write_rollouts(path, found)
    return found


def scored(folder: Path, rollouts, transcriber: Transcriber, cfg: PreferConfig):
    path = folder / "scores.parquet"
    if path.is_file():
        return store.read_scores(path)
    out = score(rollouts, transcriber, cfg)
    store.write_scores(path, *out)
    return out
