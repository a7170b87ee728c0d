"""Listeners' judgements as preference pairs (kani_adapt/preference/human.py): the votes of each
design, the listeners' majority, and a listening test answered in the real browser whose pairs'
chosen and rejected are the clips the listeners preferred."""
import os
from pathlib import Path

import numpy as np
import pytest

from kani_adapt.cli.main import main
from kani_adapt.core.errors import DataError
from kani_adapt.listen.material import ANCHOR, REFERENCE
from kani_adapt.preference import human

GENERATED = {"adapted", "base", "other"}


def _row(listener, design, a, b, answer, item="i0", trial=1, check=False):
    return {"listener_name": listener, "design": design, "system_a": a, "system_b": b,
            "answer": str(answer), "item": item, "trial": trial, "is_check": int(check)}


def test_each_design_votes_for_the_clip_it_favours():
    rows = [_row("l1", "ab", "adapted", "base", "a"),  # adapted
            _row("l1", "ab", "base", "adapted", "none"),  # no vote
            _row("l1", "cmos", "adapted", "base", 2),  # B is better: base
            _row("l1", "cmos", "base", "adapted", -1),  # A is better: base
            _row("l1", "cmos", "base", "adapted", 0),  # no vote
            # a MUSHRA page: generated clips compared with each other only
            *[_row("l2", "mushra", s, None, v, trial=9) for s, v in
              (("adapted", 80), ("base", 40), ("other", 80), ("recording", 95), (REFERENCE, 100), (ANCHOR, 5))],
            _row("l1", "ab", REFERENCE, ANCHOR, "a", check=True),  # an attention check: no vote
            _row("l1", "ab", "adapted", "recording", "a")]  # a recording has no codes: no vote
    got = human.votes(rows, GENERATED)
    assert set(got) == {("i0", "adapted", "base"), ("i0", "adapted", "other"), ("i0", "base", "other")}
    assert got[("i0", "adapted", "base")] == {"adapted": 2, "base": 2}
    assert got[("i0", "adapted", "other")] == {}  # equal ratings
    assert got[("i0", "base", "other")] == {"other": 1}


def test_listeners_who_fail_their_attention_checks_are_left_out():
    rows = [_row("good", "ab", REFERENCE, ANCHOR, "a", check=True),
            _row("good", "ab", "adapted", "base", "a"),
            _row("sleepy", "ab", REFERENCE, ANCHOR, "b", check=True),  # the anchor preferred
            _row("sleepy", "ab", "adapted", "base", "b")]
    kept, excluded = human._kept_rows(rows)
    assert excluded == ["sleepy"] and {r["listener_name"] for r in kept} == {"good"}
    assert human.votes(kept, GENERATED)[("i0", "adapted", "base")] == {"adapted": 1}


# ------------------------------------------------------------------ the real browser, end to end

def _taste(listener: str, item: str) -> dict:
    """Both listeners prefer the adapted clip, except ben on bernd-0: a tie there."""
    taste = {REFERENCE: 100, "recording": 92, "adapted": 70, "codec_roundtrip": 50, "base": 30, ANCHOR: 5}
    if listener == "ben" and item == "bernd-0":
        taste.update(adapted=25, base=75)
    return taste


def _answer(page, app, name):
    """Play every slot, answer from the taste (peeking at the store: the page knows no systems)."""
    from playwright.sync_api import expect

    from tests.listen.test_browser import PLAYED, _next_trial

    trial = _next_trial(app, name).trial
    taste = _taste(name, trial.item)
    for button in page.locator("#trial button.play").all():
        button.click()
        expect(button).to_have_class(PLAYED)
    if trial.design == "ab":
        a, b = trial.stimuli
        page.check(f"input[name=choice][value={'A' if taste[a] > taste[b] else 'B'}]")
    elif trial.design == "cmos":  # B against A, -3 to +3
        a, b = trial.stimuli
        page.check(f"input[name=choice][value='{2 if taste[b] > taste[a] else -2}']")
    else:
        for slot, system in enumerate(trial.stimuli, 1):
            page.eval_on_selector(f"input[type=range][name='{slot}']",
                                  "(r, v) => { r.value = v; r.dispatchEvent(new Event('input')); }",
                                  taste[system])
    before = page.text_content("#count")
    page.click("#submit")
    expect(page.locator("#count")).not_to_have_text(before)


@pytest.fixture
def coded_eval(tmp_path):
    from tests.listen.conftest import synthetic_eval

    return synthetic_eval(tmp_path / "world", {"en": "English as spoken in England", "de": "standard German"},
                          codes=True)


@pytest.mark.slow
def test_a_listening_test_answered_in_the_browser_becomes_the_listeners_pairs(coded_eval, base_ckpt, tmp_path):
    from playwright.sync_api import sync_playwright

    from kani_adapt.config.load import load_config
    from kani_adapt.eval import spoken
    from kani_adapt.listen.design import PlanSettings
    from kani_adapt.preference import pairs as build
    from kani_adapt.preference.config import PreferConfig
    from kani_adapt.preference.rollouts import laid_out
    from kani_adapt.preference.rounds import load_policy
    from kani_adapt.training import pairs as pairs_file, trajectory
    from tests.listen.served import serving, token
    from tests.listen.test_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium (scripts/bootstrap.sh installs it)")
    settings = PlanSettings(designs=("ab", "cmos", "mushra"), checks=1)
    with serving(coded_eval, settings=settings) as (app, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name in ("anna", "ben"):
            page = browser.new_page(viewport={"width": 900, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/l/{token(app, name)}")
            page.click("#start")
            while not page.locator("#done").is_visible():
                _answer(page, app, name)
            page.close()
        browser.close()
        judged = app.store.judgements()
    assert {r["design"] for r in judged} == {"ab", "cmos", "mushra"}

    cfg = load_config(PreferConfig, None, [f"run_dir={tmp_path / 'run'}", f"policy={base_ckpt}",
                                           f"dataset={tmp_path}", f"pairs.human=[{coded_eval}]",
                                           "pairs.human_weight=0.5"])
    policy = load_policy(str(base_ckpt))
    made, counts = human.pairs(cfg.pairs.human, policy, cfg)
    # anna-0, anna-1: both listeners preferred adapted (3 votes each); bernd-0: ben preferred base
    # on every design, a tie; bernd-1: base was given another voice, not a pair
    assert counts == {"pairs": 2, "ties": 1, "different_voices": 1, "listeners": 2,
                      "excluded_listeners": [], "weight": 0.5}
    codes = spoken.read(coded_eval)
    assert sorted(p.group for p in made) == ["human/anna-0", "human/anna-1"]
    for p in made:
        item = p.group.split("/")[1]
        assert np.array_equal(p.chosen.codes, codes[("adapted", item, 0)].codes)
        assert np.array_equal(p.rejected.codes, codes[("base", item, 0)].codes)
        assert np.array_equal(p.speaker_emb, codes[("adapted", item, 0)].speaker_emb)
        assert p.source == "human" and p.weight == 0.5 and p.kind == human.KIND
        text = app.material.items[item]
        assert p.text == text.text and p.prompt == laid_out(policy, [text.text], [text.tag])[0][1]
        # each side's reference: its trajectory under the round's policy
        assert [p.chosen.ref, p.rejected.ref] == pytest.approx(trajectory.reference(policy.model, [
            trajectory.Rollout(p.prompt, s.codes, s.truncated, p.speaker_emb) for s in (p.chosen, p.rejected)],
            cfg.train.stop_floor))
    # the pairs stage mixes them with the round's automatic pairs (none here) into the pairs
    # file the dpo objective reads
    written = build.stage(tmp_path / "pairs", policy, str(base_ckpt), [], [], [], cfg)
    assert written["pairs"] == 2 and written["human"] == counts
    back = pairs_file.read(tmp_path / "pairs")[0]
    assert [(b.source, b.weight) for b in back] == [("human", 0.5)] * 2
    assert all(np.array_equal(b.chosen.codes, p.chosen.codes) for b, p in zip(back, made))

    # the ratings were collected on these clips: once a clip changes (the eval ran again), refused
    wav = coded_eval / "wavs" / "adapted" / "anna-0_s0.wav"
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="collected on other clips"):
        human.pairs(cfg.pairs.human, policy, cfg)


def test_prefer_check_names_a_listening_test_without_ratings_or_codes(tmp_path, capsys):
    from kani_adapt.training.synthetic import synthetic_dataset

    data = synthetic_dataset(tmp_path / "hf", n_speakers=3, per_speaker=2)
    capsys.readouterr()  # the datasets library's progress bars
    (tmp_path / "eval").mkdir()
    config = tmp_path / "prefer.yaml"
    config.write_text(f"run_dir: {tmp_path / 'run'}\npolicy: {tmp_path / 'sft'}\ndataset: {data}\n"
                      f"pairs:\n  human: [{tmp_path / 'eval'}, {tmp_path / 'gone'}]\n")
    assert main(["prefer", str(config), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert "no listening test's ratings" in err[0] and "codes.parquet" in err[1] and "no such folder" in err[2]
