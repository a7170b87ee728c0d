"""The sample and score stages on disk: each writes its table once and reads it back on a rerun."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kani_adapt import tokens
from kani_adapt.preference import reward as rewards, store
from kani_adapt.preference.config import PreferConfig
from kani_adapt.core.errors import ConfigError
from kani_adapt.preference.rollouts import Transcriber, VoiceMatch, plan, sample
from kani_adapt.scorers.text import error_rates
from kani_adapt.text.tags import language_of


def similarities(rollouts, voices: VoiceMatch | None, cfg: PreferConfig) -> list[float]:
    """Each rollout's voice similarity when the reward weighs it: nan for an unconditioned
    rollout (no term), 0 for a conditioned one with no voice to compare (an empty one)."""
    if cfg.reward.similarity <= 0:
        return [float("nan")] * len(rollouts)
    if voices is None:
        raise ConfigError("reward.similarity is above 0 but nothing measures voices; give "
                          "reward.speaker_embedder (or set reward.similarity: 0)")
    found = voices([r.codes for r in rollouts], [r.speaker_emb for r in rollouts])
    return [0.0 if r.speaker_emb is not None and m != m else m for r, m in zip(rollouts, found)]


def score(rollouts, transcriber: Transcriber, cfg: PreferConfig, voices: VoiceMatch | None = None):
    heard = transcriber([r.codes for r in rollouts], [r.prompt.tag for r in rollouts])
    scores, values, failed = [], [], []
    for r, text, sim in zip(rollouts, heard, similarities(rollouts, voices, cfg)):
        rates = error_rates(r.prompt.text, text, language_of(r.prompt.tag))
        s = rewards.Score(text, rates.wer, rates.cer, len(r.codes) / tokens.FRAMES_PER_SECOND,
                          r.expected, r.truncated, sim)
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


def scored(folder: Path, rollouts, transcriber: Transcriber, cfg: PreferConfig,
           voices: VoiceMatch | None = None):
    path = folder / "scores.parquet"
    if path.is_file():
        return store.read_scores(path)
    out = score(rollouts, transcriber, cfg, voices)
    store.write_scores(path, *out)
    return out
