"""The pairs and train stages: pairs chosen by reward within each group, and the listeners'
pairs of ``pairs.human`` (kani_adapt/preference/human.py), their reference log-probabilities
computed once under the policy that sampled them (so training holds one model), written as a
pairs file (kani_adapt/training/pairs.py); then a training run with ``objective: dpo`` on them
and its merged export, which the next round samples from."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kani_adapt.preference import reward as rewards
from kani_adapt.preference.config import PreferConfig
from kani_adapt.training import pairs as pairs_file, trajectory

log = logging.getLogger("kani_adapt.prefer")


def stage(folder: Path, generator, policy: str, rolled, values: list[float],
          failed: list[list[str]], cfg: PreferConfig) -> dict:
    """Write the pairs file (skipped when there); returns its counts."""
    if (folder / pairs_file.META).is_file():
        return pairs_file.read_meta(folder).counts
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rolled):
        groups.setdefault(r.group, []).append(i)
    chosen_pairs, outcomes = [], []
    for group, index in groups.items():
        found, outcome = rewards.choose([values[i] for i in index], [not failed[i] for i in index],
                                        cfg.pairs)
        outcomes.append(outcome)
        chosen_pairs += [(index[w], index[lo]) for w, lo in found]
    sides = sorted({i for pair in chosen_pairs for i in pair})
    refs = dict(zip(sides, trajectory.reference(
        generator.model, [trajectory.Rollout(rolled[i].ids, rolled[i].codes, rolled[i].truncated,
                                             rolled[i].speaker_emb) for i in sides],
        cfg.train.stop_floor)))
    made = []
    for w, lo in chosen_pairs:
        r = rolled[w]
        made.append(pairs_file.Pair(
            group=r.group, prompt=r.ids, text=r.prompt.text, tag=r.prompt.tag, kind=r.prompt.kind,
            speaker=r.speaker, speaker_emb=r.speaker_emb, weight=1.0, source="auto",
            chosen=pairs_file.Side(r.codes, r.truncated, refs[w], values[w]),
            rejected=pairs_file.Side(rolled[lo].codes, rolled[lo].truncated, refs[lo], values[lo])))
    counts = {"groups": len(groups), "pairs": len(made), **rewards.tally(outcomes),
              "rejected_because": _reasons([failed[lo] for _, lo in chosen_pairs])}
    log.info("%s: %d pairs from %d groups (%d dropped: no rollout passed the gates)", folder,
             len(made), len(groups), counts["no_passing"])
    if cfg.pairs.human:  # the listeners' pairs, their references under this round's policy
        from kani_adapt.preference import human

        found, counts["human"] = human.pairs(cfg.pairs.human, generator, cfg)
        made += found
        counts["pairs"] = len(made)
    meta = pairs_file.Meta(layout=generator.text_layout.identity(),
                           frontend=generator.reads_with.identity(), stop_floor=cfg.train.stop_floor,
                           policy=policy, counts=counts)
    pairs_file.write(folder, made, meta)
    return counts


def _reasons(failed: list[list[str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for reasons in failed:
        for reason in reasons:
            out[reason] = out.get(reason, 0) + 1
    return out


def train_overrides(folder: Path, policy: str, generator, cfg: PreferConfig) -> list[str]:
    t, layout = cfg.train, generator.text_layout
    speaker = any(np.ndim(p.speaker_emb) for p in pairs_file.read(folder / "pairs")[0])
    values = [f"run_dir={folder / 'train'}", f"model.init={policy}", f"data.train={cfg.dataset}",
              "objective=dpo", f"dpo.pairs={folder / 'pairs'}", f"dpo.beta={t.beta}",
              f"dpo.stop_floor={t.stop_floor}", "mode=lora", f"lora.targets={t.lora_targets}",
              f"lora.r={t.lora_r}", "lora.stop_row=true", f"optim.lr={t.lr}",
              f"trainer.max_steps={t.max_steps}", f"trainer.precision={t.precision}",
              f"trainer.device={cfg.device}", f"data.token_budget={t.token_budget}",
              f"data.use_speaker_emb={str(bool(speaker)).lower()}"]
    if layout.enabled:
        values += ["data.repeat_short_texts=true", f"data.repeat_below={layout.below}",
                   f"data.repeat_target={layout.target}", f"data.repeat_max={layout.most}"]
    return values + list(t.overrides)


def train_and_export(folder: Path, policy: str, generator, cfg: PreferConfig) -> str:
    """Train the round's DPO run (resumed or skipped when done) and write its merged export;
    returns the export's folder. A round without pairs keeps the policy."""
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.export import export_run
    from kani_adapt.training.fit import train

    out = folder / "export"
    if (out / "config.json").is_file():
        return str(out)
    if not pairs_file.read_meta(folder / "pairs").counts.get("pairs"):
        log.warning("%s: no pairs this round; the next samples from the same policy", folder)
        return policy
    train_cfg = load_config(TrainConfig, None, train_overrides(folder, policy, generator, cfg))
    if not (folder / "train" / "metrics.json").is_file():
        train(train_cfg)
    export_run(folder / "train", out, merge=True, dtype=cfg.train.export_dtype)
    return str(out)
