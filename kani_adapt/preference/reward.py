"""A rollout's reward, the chosen's gates and the choice of pairs within a text x voice group.

``R = -wer WER - over max(0, dur - dur_max) - short [dur < dur_min] - empty [ASR empty]
- similarity (1 - SIM)``, with ``[dur_min, dur_max] = [window_min, window_max] x expected``
(the fitted duration model) and SIM the cosine of the rollout's voice to the voice it was given
(the similarity term is off unless ``similarity`` is above 0; a rollout with no voice to
compare, e.g. an empty one, counts as SIM 0; an unconditioned rollout has no term). The
duration penalty is two-sided on purpose: with only its long side, stopping at once beats an
honest attempt (an empty transcript caps WER at 1) and DPO collapses to silence.

Pairs: the chosen must pass every gate (WER <= max_wer, a transcript, not truncated, duration
in the window); the rejected is the lowest-reward rollout that fails one; a pair needs a reward
gap of at least ``margin``; at most ``per_group`` pairs per group (the k-th best passing rollout
against the k-th worst failing one). A group with no passing rollout is dropped and counted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kani_adapt.preference.config import PairsConfig, RewardConfig


@dataclass(frozen=True)
class Score:
    transcript: str
    wer: float
    cer: float
    seconds: float
    expected: float
    truncated: bool
    similarity: float = float("nan")  # to the voice it was given (nan: not measured)

    @property
    def empty(self) -> bool:
        return not self.transcript.strip()


def window(score: Score, cfg: RewardConfig) -> tuple[float, float]:
    return cfg.window_min * score.expected, cfg.window_max * score.expected


def reward(score: Score, cfg: RewardConfig) -> float:
    low, high = window(score, cfg)
    value = (-cfg.wer * score.wer - cfg.over * max(0.0, score.seconds - high)
             - cfg.short * float(score.seconds < low) - cfg.empty * float(score.empty))
    if cfg.similarity > 0 and score.similarity == score.similarity:  # measured
        value -= cfg.similarity * (1.0 - score.similarity)
    return value


def failures(score: Score, reward_cfg: RewardConfig, pairs_cfg: PairsConfig) -> list[str]:
    """The gates a rollout fails (empty: it may be chosen)."""
    low, high = window(score, reward_cfg)
    return [name for name, failed in (
        ("wer", score.wer > pairs_cfg.max_wer), ("empty", score.empty),
        ("truncated", score.truncated), ("short", score.seconds < low),
        ("long", score.seconds > high)) if failed]


def choose(rewards: list[float], passing: list[bool], cfg: PairsConfig) -> tuple[list[tuple[int, int]], str]:
    """Pairs (chosen, rejected) of one group's rollouts by index, and what became of the group:
    ``paired``, ``no_passing`` (dropped), ``no_failing`` or ``no_margin``."""
    good = sorted((i for i, ok in enumerate(passing) if ok), key=lambda i: -rewards[i])
    bad = sorted((i for i, ok in enumerate(passing) if not ok), key=lambda i: rewards[i])
    if not good:
        return [], "no_passing"
    if not bad:
        return [], "no_failing"
    found = [(w, lo) for w, lo in zip(good, bad) if rewards[w] - rewards[lo] >= cfg.margin]
    return found[:cfg.per_group], "paired" if found else "no_margin"


def tally(outcomes: list[str]) -> dict[str, int]:
    counts = Counter(outcomes)
    return {k: counts.get(k, 0) for k in ("paired", "no_passing", "no_failing", "no_margin")}
