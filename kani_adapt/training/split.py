"""Which rows train and which validate: whole speakers held out, per tag.

Every tag with two or more speakers gives ``data.val_speakers`` of them to validation (at most
all but one, so the tag still trains); a tag with a single speaker keeps it for training and is
named in ``tags_without_held_out``, so the eval can say why that tag is not evaluated. The eval
reads the held-out speakers from the run's ``data_stats.json`` (``val_speakers``): it evaluates
on exactly the speakers training never saw.

With one tag this is the choice made before tags counted: ``val_speakers`` speakers drawn by
one seeded permutation of the sorted speaker names, and an error when no speaker would be left
to train. With several tags the draw is made tag by tag (in sorted order, from the same seeded
generator), so a multi-tag dataset now holds out a speaker of each tag instead of one in all.
"""
from __future__ import annotations

import numpy as np

from kani_adapt import dataset
from kani_adapt.core.errors import DataError


def speakers_by_tag(speakers: list[str], tags: list[str], rows: list[int]) -> dict[str, list[str]]:
    """tag -> its speakers (sorted) over ``rows``; a speaker of two tags is in both."""
    out: dict[str, set[str]] = {}
    for i in rows:
        out.setdefault(tags[i], set()).add(speakers[i])
    return {t: sorted(s) for t, s in sorted(out.items())}


def held_out(by_tag: dict[str, list[str]], k: int, seed: int) -> set[str]:
    """``k`` speakers of each tag with two or more (never a tag's last training speaker: a
    speaker who also speaks another tag is held out only where that tag keeps one)."""
    held: set[str] = set()
    if not k:
        return held
    rng = np.random.default_rng(seed)
    for tag, pool in by_tag.items():
        want = min(k, len(pool) - 1) - len(held.intersection(pool))
        if want <= 0:
            continue
        for name in rng.permutation([s for s in pool if s not in held]).tolist():
            if want == 0:
                break
            if all(len(set(others) - held - {name}) >= 1
                   for others in by_tag.values() if name in others):
                held.add(name)
                want -= 1
    return held


def _interleaved(rows: list[int], tags: list[str], limit: int) -> list[int]:
    """At most ``limit`` of ``rows``, taken from each tag in turn (so a cap keeps every tag);
    with one tag, the first ``limit`` rows."""
    groups: dict[str, list[int]] = {}
    for i in rows:
        groups.setdefault(tags[i], []).append(i)
    if len(groups) < 2:
        return rows[:limit]
    out, queues = [], [list(g) for g in groups.values()]
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return sorted(out)


def split_rows(table, cfg, seed: int) -> tuple[list[int], list[int], dict]:
    """Keep rows within the duration range; hold out ``cfg.val_speakers`` whole speakers per
    tag (``cfg``: the training schema's data section)."""
    speakers = dataset.speakers(table)
    tags = dataset.tags(table, cfg.tag_column)
    durations = [dataset.duration(table[i]) for i in range(len(table))]
    keep = [i for i, d in enumerate(durations) if cfg.min_duration <= d <= cfg.max_duration]
    names = sorted({speakers[i] for i in keep})
    by_tag = speakers_by_tag(speakers, tags, keep)
    if cfg.val_speakers and len(by_tag) <= 1 and len(names) <= cfg.val_speakers:
        raise DataError(f"{cfg.train}: {len(names)} speaker(s) cannot give {cfg.val_speakers} "
                        "held-out validation speaker(s) and still train; set data.val_speakers=0")
    held = held_out(by_tag, cfg.val_speakers, seed)
    train = [i for i in keep if speakers[i] not in held]
    val = _interleaved([i for i in keep if speakers[i] in held], tags, cfg.val_max_items)
    stats = {
        "rows": len(table), "filtered_by_duration": len(table) - len(keep),
        "train_hours": sum(durations[i] for i in train) / 3600,
        "train_speakers": len(names) - len(held), "val_speakers": sorted(held),
        # who trained, so an eval naming its own speakers can refuse a training voice
        "trained_speakers": sorted(set(names) - held),
        "val_speakers_by_tag": {t: [s for s in pool if s in held] for t, pool in by_tag.items()},
        # tags no held-out speaker speaks, with their speaker count: validation and the eval
        # cannot measure them on an unseen voice
        "tags_without_held_out": {t: len(pool) for t, pool in by_tag.items()
                                  if cfg.val_speakers and not held.intersection(pool)},
    }
    return train, val, stats


def describe(stats: dict) -> str:
    """One line: the speakers held out per tag, and the tags left without one."""
    shown = lambda t: t or "(no tag)"  # noqa: E731
    held = "; ".join(f"{shown(t)}: {', '.join(s)}" for t, s in stats["val_speakers_by_tag"].items()
                     if s)
    line = f"validation holds out {held}" if held else "validation holds out no speaker"
    alone = stats.get("tags_without_held_out", {})
    if alone:
        line += ("; not held out (every speaker trains, so no unseen voice validates them): " +
                 ", ".join(f"{shown(t)} ({n} speaker{'s' * (n != 1)})" for t, n in alone.items()))
    return line
