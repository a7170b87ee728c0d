"""The tiny world shows preference rounds work: a supervised generator that runs away on most
held-out short prompts goes through a `kani-adapt prefer` round (sample, score with the duration
and empty-output terms, pairs, DPO with the end of speech in the likelihood, merged export,
eval) and runs away far less, without collapsing to early stops and without losing the long
sentences it knew; a stronger step that overshoots into early stops is pulled back by the short
side of the duration penalty in the next round.

The world's clock is ten times faster than speech (one frame a word), so the over-length weight
is raised to match (``reward.over``: 10 per second instead of 0.5); WER is not part of the
reward here (the recogniser double reads only the memorised words back, so a short prompt the
model never learned to say has WER 1 in every rollout of its group).
"""
import json

import pytest
import torch

from kani_adapt.config.load import load_config
from kani_adapt.preference import rounds
from kani_adapt.preference.config import PreferConfig
from kani_adapt.training import pairs as pairs_file, trajectory
from tests.preference.tinyworld import World, frame_accuracy, save, supervised

pytestmark = pytest.mark.slow

RUNAWAY_BEFORE = 0.5  # the supervised model runs away on at least this share of short rollouts
FALL = 0.25  # ... and one round takes at least this much off it
TOO_SHORT = 0.15  # short prompts ending before the window's short end, after the round: at most
ACCURACY_TOLERANCE = 0.05  # long sentences' teacher-forced frame accuracy may fall this much
STOP_GAIN = 0.2  # the chosen's end-of-speech terms per frame gain this much over the rejected's
ROUNDS = 1


def world_config(root, policy, data, *extra):
    return load_config(PreferConfig, None, [
        f"run_dir={root / 'run'}", f"policy={policy}", f"dataset={data}",
        f"prompts.file={root / 'prompts.jsonl'}", "prompts.eval_share=0.5",
        "sample.onset_guidance=1.0", "sample.cap_min=4",
        "sample.cap_max=12", "sample.speakers_per_text=1", "sample.eval_speakers=1",
        "sample.batch=64", "reward.wer=0", "reward.over=10", "pairs.max_wer=100", "device=cpu",
        f"rounds={ROUNDS}", "train.max_steps=30", "train.lr=0.0003", "train.precision=32-true",
        "train.export_dtype=fp32", "train.token_budget=3000", "train.lora_r=8",
        "train.overrides=[trainer.log_every=1,trainer.val_every=1000,trainer.ckpt_every=1000,"
        "sampling.max_frames=3,dpo.val_share=0,lora.dropout=0,optim.warmup_steps=1]", *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The world, its supervised generator, and that generator and its dataset saved."""
    world = World()
    generator = supervised(world)
    policy, data = save(world, generator, tmp_path_factory.mktemp("tiny_world_sft"))
    return world, generator, policy, data


def write_prompts(root, world: World, long: int) -> None:
    lines = [{"text": t, "kind": "short"} for t in world.short_train + world.short_held]
    lines += [{"text": t, "kind": "long"} for t in world.long[:long]]
    (root / "prompts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.fixture(scope="module")
def world_run(built, tmp_path_factory):
    world, generator, policy, data = built
    root = tmp_path_factory.mktemp("tiny_world")
    write_prompts(root, world, long=4)
    cfg = world_config(root, policy, data)
    summary = rounds.run(cfg, world.transcribe)
    last = rounds.load_policy(str(root / "run" / f"round{ROUNDS}" / "export"))
    accuracy = (frame_accuracy(generator.model, generator.tokenizer, world, world.long),
                frame_accuracy(last.model, last.tokenizer, world, world.long))
    evals = [json.loads((root / "run" / f"round{n}" / "eval" / "eval.json").read_text())
             for n in range(ROUNDS + 1)]
    found, _ = pairs_file.read(root / "run" / "round1" / "pairs")
    stops = (stop_margin(generator.model, found), stop_margin(last.model, found))
    return world, root, summary, evals, accuracy, stops


def stop_margin(model, found) -> float:
    """Mean over pairs of the chosen's end-of-speech terms per frame minus the rejected's."""
    rolls = [trajectory.Rollout(p.prompt, side.codes, side.truncated, p.speaker_emb)
             for p in found for side in (p.chosen, p.rejected)]
    with torch.no_grad():
        got = trajectory.logprobs(model, trajectory.batch(rolls), floor=1e-4)
    per_frame = got.stop_lp / got.frames.clamp(min=1)
    return float((per_frame[0::2] - per_frame[1::2]).mean())


def test_short_prompt_runaways_fall_by_the_stated_margin(world_run):
    _, _, summary, evals, _, _ = world_run
    before, after = evals[0]["by_kind"]["short"], evals[-1]["by_kind"]["short"]
    print("tiny world, short prompts:", [e["by_kind"]["short"] for e in evals])
    assert before["runaway"] >= RUNAWAY_BEFORE
    assert after["runaway"] <= before["runaway"] - FALL
    assert after["short"] <= TOO_SHORT and after["empty"] <= TOO_SHORT  # no collapse to silence
    assert summary["rounds"][-1]["runaway"] < summary["rounds"][0]["runaway"]


def test_long_sentences_are_kept(world_run):
    _, _, summary, evals, (before, after), _ = world_run
    print("tiny world, long-prompt frame accuracy before/after:", before, after)
    assert before >= 0.9 and after >= before - ACCURACY_TOLERANCE
    long_before, long_after = evals[0]["by_kind"]["long"], evals[-1]["by_kind"]["long"]
    assert long_after["any"] <= long_before["any"] + 0.1
    assert summary["ship"] == ROUNDS  # no kind regressed beyond the tolerance


def test_pairs_are_kept_and_dropped_groups_counted(world_run):
    _, root, summary, _, _, _ = world_run
    found, meta = pairs_file.read(root / "run" / "round1" / "pairs")
    counts = meta.counts
    print("tiny world, pairs:", counts, "duration model:", summary["durations"])
    assert counts["pairs"] == len(found) >= 4
    assert sum(counts[k] for k in ("paired", "no_passing", "no_failing", "no_margin")) == counts["groups"]
    assert all(p.chosen.reward - p.rejected.reward >= 0.5 for p in found)
    assert all(not p.chosen.truncated for p in found)


def test_the_preference_reaches_the_end_of_speech_decision(world_run):
    """On the round's own pairs, the chosen's stop terms gain on the rejected's: the gradient
    reached the decision to end, not only the codes."""
    *_, (before, after) = world_run
    print("tiny world, stop-term margin chosen - rejected per frame before/after:", before, after)
    assert after >= before + STOP_GAIN


# A stronger step (lr 1e-3, beta 1, every long sentence an anchor) overshoots in round 1: long
# sentences begin to stop early, the collapse upstream saw. The short side of the duration
# penalty is what lets round 2 pull back: its too-short rollouts get the lowest rewards and
# become the rejected sides. Without it (reward.short 0, measured: the mutation of the note)
# they score as well as passing ones, form no pairs, and round 2 stops early more (0.417 of
# the long rollouts) instead of less (0.125).
OVERSHOOT = 0.25  # long rollouts stopping too early after the strong round 1: at least
PULL_BACK = 0.15  # ... and round 2 takes at least this much off it


@pytest.fixture(scope="module")
def strong_run(built, tmp_path_factory):
    world, _, policy, data = built
    root = tmp_path_factory.mktemp("tiny_world_strong")
    write_prompts(root, world, long=len(world.long))
    cfg = world_config(root, policy, data, "rounds=2", "train.lr=0.001", "train.beta=1.0")
    summary = rounds.run(cfg, world.transcribe)
    evals = [json.loads((root / "run" / f"round{n}" / "eval" / "eval.json").read_text())
             for n in range(3)]
    return summary, evals


def test_the_short_side_penalty_pulls_back_a_collapse_to_early_stopping(strong_run):
    summary, evals = strong_run
    early = [e["by_kind"]["long"]["short"] for e in evals]
    print("tiny world, strong rounds: long rollouts stopping too early by round:", early,
          "pairs:", summary["pairs"])
    assert early[0] == 0 and early[1] >= OVERSHOOT  # round 1 overshoots into early stops
    assert early[2] <= early[1] - PULL_BACK  # round 2 pulls back
    assert summary["pairs"]["round2"]["rejected_because"].get("short", 0) >= 1
    assert summary["ship"] == 0  # both rounds regressed on the long kind: the supervised model ships
