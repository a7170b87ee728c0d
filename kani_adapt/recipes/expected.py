"""What a recipe's training set will hold, known before any stage runs: the texts of each tag
and the speakers. ``check`` (and ``run``'s preflight) judges with it what training would refuse
after minutes or hours of preparation: a script the generator's tokenizer spells in bytes, more
held-out speakers than there are, a speaker the eval or the samples name that is not there.

Where it comes from, the nearest to what training reads first: the training dataset once it
exists (given as ``dataset``, or prepared by an earlier run), else the recordings' transcripts
(the data preflight's look at the sources, no audio read), else the sentences ``synth`` speaks.
Recordings without a transcript add speakers but no texts until they are transcribed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from kani_adapt.recipes.schema import Recipe

SAMPLE = 400  # texts per tag measured (seeded): fertility is a share, a sample says it


@dataclass
class Expected:
    texts: dict[str, list[str]] = field(default_factory=dict)  # tag ("" none) -> texts as given
    speakers: set[str] = field(default_factory=set)
    source: str = ""  # where they were read ("the recordings", a dataset path, "synth")
    front: object = None  # the text frontend training reads them through (None: the data's)

    def sample(self, seed: int = 0) -> dict[str, list[str]]:
        rng = random.Random(seed)
        return {tag: rng.sample(texts, min(SAMPLE, len(texts)))
                for tag, texts in sorted(self.texts.items()) if texts}


def expected(recipe: Recipe, needs=None) -> Expected | None:
    """The training set's texts and speakers as far as they are known now (None: not known
    before the data are prepared: nothing transcribed, no sources yet). ``needs``: the data
    preflight's look at the recordings (:class:`data_tools.preflight.Needs`), when it has one."""
    table = recipe.generator.data.train
    if table and Path(table).exists():
        return _from_table(table)
    if recipe.synth is not None:
        return Expected({v.tag.lower(): list(recipe.synth.sentences.get(v.tag) or [])
                         for v in recipe.synth.voices},
                        {v.speaker for v in recipe.synth.voices}, "synth")
    if needs is not None and needs.owners:
        return Expected(dict(needs.texts), needs.speakers(), "the recordings")
    return None


def _from_table(spec: str) -> Expected | None:
    from kani_adapt import dataset

    from kani_adapt.text import frontend

    try:
        table = dataset.read(spec)
    except Exception:  # noqa: BLE001 - the dataset's own check (check_table) says why
        return None
    tags = table[dataset.TAG] if dataset.TAG in table.column_names else [None] * len(table)
    texts: dict[str, list[str]] = {}
    for tag, text in zip(tags, table[dataset.TEXT]):
        texts.setdefault(dataset.tag({dataset.TAG: tag}) or "", []).append(str(text))
    front = frontend.read(dataset.DatasetLayout.of_table(spec).root) or frontend.Frontend()
    return Expected(texts, set(dataset.speakers(table)), spec, front)


def normalised(recipe: Recipe, seen: Expected,
               texts: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """``texts`` (default: a sample of each tag's) as training reads them: through the dataset's
    text frontend, or before the data are prepared, the one the recipe's data section sets."""
    front = seen.front or frontend_of(recipe)
    return {tag: [front.apply(t, tag or None) for t in group]
            for tag, group in (seen.sample() if texts is None else texts).items()}


def frontend_of(recipe: Recipe):
    """The text frontend the recipe's data tools normalise with."""
    from kani_adapt.text import frontend

    if recipe.data is None:
        return frontend.Frontend()
    from data_tools.stages.filter import text_frontend

    return text_frontend(recipe.data.filter, recipe.data.tags)
