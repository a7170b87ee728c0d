"""What the plan measures of each pilot, per eval speaker, so that every figure can be
bootstrapped over the eval speakers.

The metrics are the scorer registry's shown ones (a key metric of the verdict, one compared with
the recordings, or one beside each clip: a scorer registered later appears here when its
figures are in the eval), plus the held-out loss (:data:`HELDOUT`): the training objective's
validation loss on the held-out speakers' rows, which speaks even where no ASR is configured.

A figure per speaker is a pair (numerator, denominator): a clip metric's sum and count, a corpus
rate's edits and units, the held-out loss's token-weighted sum and tokens. Any mean over a draw
of speakers is then sum(numerators) / sum(denominators), as the eval's own intervals compute it.
"""
from __future__ import annotations

import math
from pathlib import Path

HELDOUT = "heldout_loss"


def shown() -> dict[str, bool]:
    """metric -> whether higher is better, for the registry's shown metrics, in its order."""
    from kani_adapt.scorers.registry import every_metric

    return {m.name: m.higher_is_better for m in every_metric() if m.headline or m.anchor or m.column}


def directions() -> dict[str, bool]:
    return {HELDOUT: False, **shown()}


def speaker_sums(eval_dir: Path, checkpoint: str) -> dict[str, dict[str, list[float]]]:
    """metric -> speaker -> [numerator, denominator] of ``checkpoint``'s rows in an eval folder's
    utterances.parquet (the eval set's own items: no short probes, no base-language rows)."""
    import pandas as pd

    from kani_adapt.eval.probes import is_probe
    from kani_adapt.scorers.registry import corpus_rates

    df = pd.read_parquet(Path(eval_dir) / "utterances.parquet")
    df = df[(df["checkpoint"] == checkpoint) & ~df["base"].astype(bool)
            & ~df["item"].astype(str).map(is_probe)]
    rates, out = corpus_rates(), {}
    for metric in shown():
        if metric in rates:
            edits, units = rates[metric]
            if edits not in df or units not in df:
                continue
            pairs = df[[edits, units, "speaker"]].dropna()
            sums = {str(s): [float(g[edits].sum()), float(g[units].sum())]
                    for s, g in pairs.groupby("speaker")}
        elif metric in df:
            values = df[[metric, "speaker"]].dropna()
            sums = {str(s): [float(g[metric].sum()), float(len(g))]
                    for s, g in values.groupby("speaker")}
        else:
            continue
        sums = {s: v for s, v in sums.items() if v[1] > 0 and math.isfinite(v[0])}
        if sums:
            out[metric] = sums
    return out


def pooled(sums: dict[str, list[float]]) -> float:
    """The figure over every speaker."""
    num = sum(v[0] for v in sums.values())
    den = sum(v[1] for v in sums.values())
    return num / den if den > 0 else math.nan
