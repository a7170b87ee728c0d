"""Native listeners' judgements as preference pairs.

A listening test (``kani-adapt listen``) over eval folders asks listeners to compare systems
that speak the same text in the same voice. Each judgement of two generated clips of one item
is a vote: an AB choice for its winner ("no preference": none), a CMOS answer for the side its
sign favours (0: none), a MUSHRA page for the higher-rated of every two generated clips on it
(equal ratings: none). Attention checks are not votes, and listeners who failed more than 15 %
of their checks are left out, as in the listening results (kani_adapt/listen/analysis.py). A
pair of clips becomes a preference pair when one side has more votes (the listeners'
majority); a tie is dropped and counted.

Only generated clips can be pairs: their codes and voice are read from the eval folder's
``codes.parquet`` (kani_adapt/eval/spoken.py); recordings and codec round trips have none in
the policy's likelihood. Two clips given different voices are not paired (the preference would
be the voice's). The prompt is laid out as the policy generates, and each side's reference
log-likelihood is computed under the round's policy, as for the automatic pairs: the clips were
sampled by other checkpoints, which a pair's reference does not need to know.
"""
from __future__ import annotations

import logging
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np

from kani_adapt.core.errors import DataError
from kani_adapt.preference.config import PreferConfig
from kani_adapt.training import pairs as pairs_file, trajectory

log = logging.getLogger("kani_adapt.prefer")
KIND = "listeners"  # the kind of a human pair's prompt


def votes(rows: list[dict], generated: set[str]) -> dict[tuple[str, str, str], Counter]:
    """(item, first, second) with first < second -> the votes each of the two won (a judgement
    without a preference still names the pair, with no vote), from judgement rows of the
    listeners kept; only systems in ``generated`` count."""
    out: dict[tuple[str, str, str], Counter] = {}

    def vote(item: str, p: str, q: str, winner: str | None) -> None:
        if p not in generated or q not in generated or p == q:
            return
        entry = out.setdefault((item, *sorted((p, q))), Counter())
        if winner is not None:
            entry[winner] += 1

    pages: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        if r["is_check"]:
            continue
        if r["design"] == "ab":
            vote(r["item"], r["system_a"], r["system_b"],
                 {"a": r["system_a"], "b": r["system_b"]}.get(r["answer"]))
        elif r["design"] == "cmos":  # an answer rates B against A
            sign = int(np.sign(int(r["answer"])))
            vote(r["item"], r["system_a"], r["system_b"],
                 {1: r["system_b"], -1: r["system_a"]}.get(sign))
        elif r["design"] == "mushra":
            pages.setdefault((r["listener_name"], r["trial"]), []).append(r)
    for page in pages.values():
        for x, y in combinations(page, 2):
            a, b = int(x["answer"]), int(y["answer"])
            winner = x["system_a"] if a > b else y["system_a"] if b > a else None
            vote(x["item"], x["system_a"], y["system_a"], winner)
    return out


def _kept_rows(rows: list[dict]) -> tuple[list[dict], list[str]]:
    from kani_adapt.listen.analysis import screening

    excluded = sorted(n for n, s in screening(rows).items() if s["excluded"])
    return [r for r in rows if r["listener_name"] not in excluded], excluded


def _read(folders: list[Path], sample: int):
    """The listening test's material, its kept judgements, the excluded listeners and every
    folder's codes; a DataError when the ratings were collected on other clips."""
    from kani_adapt.eval import spoken
    from kani_adapt.listen.material import load_material
    from kani_adapt.listen.store import FILE, read_ratings

    material = load_material(folders, sample)
    fingerprint, rows = read_ratings(folders[0] / FILE)
    if fingerprint and fingerprint != material.fingerprint():
        raise DataError(f"{folders[0] / FILE}: these ratings were collected on other clips (the eval "
                        f"ran again since, or the test played another sample than pairs.human_sample "
                        f"{sample}); they cannot be paired with these codes")
    kept, excluded = _kept_rows(rows)
    codes = {folder: spoken.read(folder) for folder in {f for f, _ in material.sources.values()}}
    return material, kept, excluded, codes


def pairs(folders: list[str], generator, cfg: PreferConfig) -> tuple[list[pairs_file.Pair], dict]:
    """The listeners' pairs of the test over ``folders`` (with reference log-likelihoods under
    ``generator``) and their counts: pairs, ties, pairs of clips in different voices, listeners
    kept and left out."""
    from kani_adapt.preference.rollouts import laid_out

    material, rows, excluded, codes = _read([Path(f) for f in folders], cfg.pairs.human_sample)
    generated = {s for s, _ in material.sources}
    counts = Counter()
    found: list[tuple[str, object, object]] = []  # (item, chosen, rejected) as Spoken
    for (item, p, q), won in sorted(votes(rows, generated).items()):
        if won[p] == won[q]:
            counts["ties"] += 1
            continue
        winner, loser = (p, q) if won[p] > won[q] else (q, p)
        sides = []
        for system in (winner, loser):
            folder, checkpoint = material.sources[(system, item)]
            clip = codes[folder].get((checkpoint, item, cfg.pairs.human_sample))
            if clip is None:
                raise DataError(f"{folder}: no codes of {checkpoint}/{item} in codes.parquet; "
                                "the folder is incomplete, evaluate again")
            sides.append(clip)
        a, b = (s.speaker_emb for s in sides)
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            counts["different_voices"] += 1
            continue
        found.append((item, *sides))
    items = [material.items[i] for i, _, _ in found]
    tags = [it.tag or cfg.prompts.tag or cfg.prompts.language for it in items]
    prompts = laid_out(generator, [it.text for it in items], tags)
    sides = [s for _, chosen, rejected in found for s in (chosen, rejected)]
    refs = trajectory.reference(generator.model, [
        trajectory.Rollout(prompts[k // 2][1], s.codes, s.truncated, s.speaker_emb)
        for k, s in enumerate(sides)], cfg.train.stop_floor) if sides else []
    made = []
    for k, ((item_id, chosen, rejected), item, tag) in enumerate(zip(found, items, tags)):
        made.append(pairs_file.Pair(
            group=f"human/{item_id}", prompt=prompts[k][1], text=item.text, tag=tag, kind=KIND,
            speaker=item.speaker, speaker_emb=chosen.speaker_emb, weight=cfg.pairs.human_weight,
            source="human",
            chosen=pairs_file.Side(chosen.codes, chosen.truncated, refs[2 * k]),
            rejected=pairs_file.Side(rejected.codes, rejected.truncated, refs[2 * k + 1])))
    summary = {"pairs": len(made), "ties": counts["ties"], "different_voices": counts["different_voices"],
               "listeners": len({r["listener_name"] for r in rows}), "excluded_listeners": excluded,
               "weight": cfg.pairs.human_weight}
    log.info("listeners' pairs from %s: %d (%d ties dropped, %d in different voices, %d listener(s) "
             "left out by their attention checks)", folders[0], len(made), counts["ties"],
             counts["different_voices"], len(excluded))
    return made, summary
