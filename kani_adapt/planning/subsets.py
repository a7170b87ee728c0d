"""Nested subsets of a recipe's training set, on two axes, and what each one holds.

- The training set is what the recipe's own training would train on: the prepared dataset's
  rows within its duration range, without the speakers it holds out (its ``val_speakers``,
  drawn with its seed as training draws them) and without the eval set's named speakers. Those
  held-out speakers are the eval speakers of every pilot and enter no subset.
- Hours axis: the training rows in one seeded order; the subset at a fraction is the shortest
  run of that order from its start holding that share of the hours, so each subset holds the
  one before it.
- Voices axis: the hours of one hours-axis subset (``speaker_fraction``) spoken by fewer voices:
  the first k voices of one seeded order (the voices of a smaller count are among those of a
  larger one), their rows taken in the same row order until they hold those hours.

A dataset too small for what is asked stops here, before any pilot, with one line saying how
much is needed.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kani_adapt import dataset
from kani_adapt.core.errors import DataError
from kani_adapt.planning.config import PlanConfig

HOURS, VOICES = "hours", "voices"


@dataclass(frozen=True)
class Subset:
    name: str
    axis: str  # HOURS or VOICES
    fraction: float  # of the training set's hours
    rows: tuple[int, ...]  # rows of the prepared dataset, in the seeded order
    voices: int
    hours: float


@dataclass
class TrainingSet:
    """The rows a recipe trains on and the speakers it holds out, with each row's facts."""

    rows: list[int]
    held_out: list[str]
    speakers: list[str]  # of every row of the prepared dataset
    seconds: list[float]

    def hours(self, rows) -> float:
        return sum(self.seconds[i] for i in rows) / 3600

    def voices(self, rows) -> list[str]:
        return sorted({self.speakers[i] for i in rows})


def training_set(table, recipe) -> TrainingSet:
    """The recipe's training rows and held-out speakers (``split_rows``: training's own split)."""
    from kani_adapt.training.data import split_rows

    gen = recipe.generator
    rows, _, stats = split_rows(table, gen.data, gen.trainer.seed)
    named = list(recipe.eval.dataset.speakers)
    held = sorted(set(stats["val_speakers"]) | set(named))
    speakers = dataset.speakers(table)
    rows = [i for i in rows if speakers[i] not in held]
    if not held:
        raise DataError(f"{gen.data.train}: the recipe holds out no speakers, so the pilots "
                        "would have no one to be evaluated on; set generator.data.val_speakers "
                        ">= 1 or name eval.dataset.speakers")
    if not rows:
        raise DataError(f"{gen.data.train}: no training rows are left once the held-out "
                        f"speakers ({', '.join(held)}) are set aside")
    return TrainingSet(rows, held, speakers, [dataset.duration(table[i]) for i in range(len(table))])


def draw(ts: TrainingSet, cfg: PlanConfig) -> list[Subset]:
    """The hours-axis subsets, then the voices-axis ones; DataError (one line: how much is
    needed) when the training set is too small for them."""
    order = [ts.rows[i] for i in np.random.default_rng(cfg.seed).permutation(len(ts.rows))]
    total = ts.hours(order)
    out = [_prefix(ts, order, f * total, f"{HOURS}-{f:g}", HOURS, f) for f in cfg.fractions]
    _check_sizes(out, total, cfg)
    anchor = next(s for s in out if s.fraction == cfg.speaker_fraction)
    voices = [ts.voices(order)[i] for i in
              np.random.default_rng(cfg.seed + 1).permutation(len(ts.voices(order)))]
    for k in speaker_counts(ts, order, voices, anchor, cfg):
        chosen = set(voices[:k])
        mine = [i for i in order if ts.speakers[i] in chosen]
        out.append(_prefix(ts, mine, anchor.hours, f"{VOICES}-{k}", VOICES,
                           cfg.speaker_fraction))
    return out


def _prefix(ts: TrainingSet, order: list[int], hours: float, name: str, axis: str,
            fraction: float) -> Subset:
    """The shortest start of ``order`` holding ``hours`` (all of it when it holds less)."""
    held, n = 0.0, 0
    while n < len(order) and held < hours - 1e-9:
        held += ts.seconds[order[n]] / 3600
        n += 1
    rows = tuple(order[:n])
    return Subset(name, axis, fraction, rows, len(ts.voices(rows)), ts.hours(rows))


def _check_sizes(subsets: list[Subset], total: float, cfg: PlanConfig) -> None:
    smallest = subsets[0]
    if smallest.hours * 60 < cfg.min_minutes:
        need = cfg.min_minutes / cfg.fractions[0]
        raise DataError(
            f"the training set holds {total * 60:.1f} min of speech: its smallest subset "
            f"({cfg.fractions[0]:g} of it) holds {smallest.hours * 60:.2f} min, under "
            f"plan.min_minutes={cfg.min_minutes:g}; these fractions need at least {need:.0f} min "
            "of training speech (or raise the smallest fraction)")
    for small, large in zip(subsets, subsets[1:]):
        if len(small.rows) == len(large.rows):
            raise DataError(f"subsets {small.name} and {large.name} hold the same "
                            f"{len(small.rows)} clips: the training set is too small for "
                            "fractions this close; drop one from plan.fractions")


def speaker_counts(ts: TrainingSet, order: list[int], voices: list[str], anchor: Subset,
                   cfg: PlanConfig) -> list[int]:
    """The voices-axis counts: as asked (each checked), else half and a quarter of the training
    voices where their speech holds the anchor's hours (none with fewer than 2 voices)."""
    have = len(voices)
    held = lambda k: ts.hours([i for i in order if ts.speakers[i] in set(voices[:k])])  # noqa: E731
    if not cfg.speaker_counts:
        wanted = sorted({math.ceil(have / 4), math.ceil(have / 2)} - {have})
        return [k for k in wanted if k >= 1 and held(k) >= anchor.hours - 1e-9]
    for k in cfg.speaker_counts:
        if k >= have:
            raise DataError(
                f"plan.speaker_counts asks for {k} voices at equal hours, fewer than all of "
                f"them; the training set has {have} voices (with {len(ts.held_out)} held out "
                f"for eval): record at least {k + 1 - have} more speaker(s) or ask for fewer "
                f"than {have}")
        if held(k) < anchor.hours - 1e-9:
            raise DataError(
                f"plan.speaker_counts: {k} voices hold {held(k) * 60:.1f} min, under the "
                f"{anchor.hours * 60:.1f} min each voices-axis pilot trains on "
                f"(plan.speaker_fraction={cfg.speaker_fraction:g}); count more voices or "
                "lower plan.speaker_fraction")
    return sorted(set(cfg.speaker_counts))


def diversity(table, ts: TrainingSet, rows) -> dict:
    """What a subset holds: voices, hours per voice, and the spread (10th-90th percentile) of
    SNR (the filter stage's ``snr_db`` column, where measured) and speaking rate (characters
    per second)."""
    rows = list(rows)
    per_voice: dict[str, float] = {}
    for i in rows:
        per_voice[ts.speakers[i]] = per_voice.get(ts.speakers[i], 0.0) + ts.seconds[i] / 3600
    hours = sorted(per_voice.values())
    texts = table.select(rows)[dataset.TEXT]
    rate = [len(t) / ts.seconds[i] for t, i in zip(texts, rows) if ts.seconds[i] > 0]
    snr = []
    if "snr_db" in table.column_names:
        snr = [v for v in table.select(rows)["snr_db"] if v is not None and math.isfinite(v)]
    return {"voices": len(per_voice), "clips": len(rows), "hours": sum(hours),
            "hours_per_voice": _spread(hours, (0, 50, 100)),
            "snr_db": _spread(snr, (10, 90)), "chars_per_second": _spread(rate, (10, 90))}


def _spread(values, percentiles) -> list[float] | None:
    return [float(v) for v in np.percentile(values, percentiles)] if len(values) else None


def write(table, subset: Subset, source: str, folder: Path) -> Path:
    """The subset's rows as a dataset folder (``hf`` and the text frontend the whole dataset's
    texts went through), written once: the pilot trains on ``folder/hf``."""
    from kani_adapt.core.atomic import write_folder, write_text
    from kani_adapt.text import frontend

    layout = dataset.DatasetLayout(folder)
    marker = folder / "rows.txt"
    listed = "\n".join(map(str, subset.rows)) + "\n"
    if marker.is_file() and marker.read_text() == listed and layout.hf.is_dir():
        return layout.hf
    if folder.exists():
        shutil.rmtree(folder)
    part = table.select(list(subset.rows))
    write_folder(layout.hf, lambda tmp: part.save_to_disk(str(tmp)))
    own = dataset.DatasetLayout.of_table(source).root / frontend.FILE
    if own.is_file():
        shutil.copyfile(own, folder / frontend.FILE)
    write_text(marker, listed)
    return layout.hf
