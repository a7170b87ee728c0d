"""Small things a new user tripped on: one --tag per --text, `speaker-emb --model tiny` as in
recipes, the codec check's verdict that counts the groups it does not name."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.cli.generate_command import tags_of
from kani_adapt.cli.main import main
from kani_adapt.codec.check import SHOWN_GROUPS, Thresholds, verdict
from kani_adapt.core.errors import ConfigError


def test_a_tag_per_text_or_one_for_all():
    assert tags_of(None, 2) == [None, None]
    assert tags_of(["de"], 3) == ["de", "de", "de"]
    assert tags_of(["de", "en_scotland"], 2) == ["de", "en_scotland"]
    with pytest.raises(ConfigError, match="2 --tag for 3 --text"):
        tags_of(["de", "en"], 3)


def test_generate_speaks_each_text_with_its_own_tag(base_ckpt, tmp_path, monkeypatch):
    from kani_adapt.models.generator import synthesize as module

    seen = []
    real = module.synthesize

    def spy(generator, codec, texts, tag, *rest, **named):
        seen.append(list(tag))
        return real(generator, codec, texts, tag, *rest, **named)

    monkeypatch.setattr(module, "synthesize", spy)  # generate imports it when it runs
    assert main(["generate", str(base_ckpt), "--text", "a", "--tag", "de", "--text", "b",
                 "--tag", "en", "--max-frames", "2", "--out", str(tmp_path / "c.npy")]) == 0
    assert seen == [["de", "en"]]


def test_speaker_emb_takes_the_tiny_embedder_recipes_take(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", (rng.standard_normal(16000) * 0.1).astype(np.float32), 16000)
    assert main(["speaker-emb", str(tmp_path / "a.wav"), "--model", "tiny",
                 "--out", str(tmp_path / "v.npy")]) == 0
    voice = np.load(tmp_path / "v.npy")
    assert voice.shape == (128,) and abs(float(np.linalg.norm(voice)) - 1) < 1e-4


def test_the_codec_verdict_counts_the_groups_it_does_not_name():
    poor = {"poor_share": 0.5}
    summary = {"overall": poor, "speaker": {f"s{i}": poor for i in range(7)}, "tag": {}}
    line = verdict(summary, Thresholds())
    assert line.count("poor)") == SHOWN_GROUPS and line.endswith("and 3 more (tables below)")


def test_the_codec_check_keeps_every_clip_and_its_round_trip_to_listen_to(corpus, tmp_path):
    from kani_adapt.codec import check
    from kani_adapt.codec.manifest import read_manifest
    from tests.codec.test_check import FakeCodec

    clips = read_manifest(corpus)
    reports = check.run_check({"noisy": ("noisy", FakeCodec(0.3))}, clips, check.Thresholds(),
                              max_clips=4, max_seconds=5, seed=0, audio_dir=tmp_path / "wavs")
    kept = [c["wav"] for c in reports["noisy"]["clips"]]
    assert len(kept) == 4 and len(set(kept)) == 4
    assert sorted(p.name for p in (tmp_path / "wavs" / "noisy").iterdir()) == sorted(kept)
    for name in kept:
        original, rate = sf.read(tmp_path / "wavs" / "original" / name)
        back, _ = sf.read(tmp_path / "wavs" / "noisy" / name)
        assert len(original) == len(back) > rate // 2 and np.abs(original - back).max() > 0.01


def test_the_eval_report_says_what_was_and_was_not_evaluated():
    from types import SimpleNamespace as Item

    from kani_adapt.eval.report import anchor_line, coverage, coverage_lines

    items = [Item(tag="de", speaker="anna"), Item(tag="de", speaker="anna")]
    cov = coverage(items, known_tags=["de", "en_scotland"])
    assert cov == {"tags": {"de": 2}, "speakers": {"anna": 2}, "tags_not_evaluated": ["en_scotland"]}
    text = "\n".join(coverage_lines(cov))
    assert "**not evaluated** (trained, but no held-out speaker has them; a tag with one speaker " \
        "keeps it for training): en_scotland" in text
    assert "one speaker only: no interval" in text
    assert "one speaker only" not in "\n".join(coverage_lines(coverage(
        items + [Item(tag="de", speaker="ben")], ["de"])))
    line = anchor_line("merged", {"ceiling": float("nan"), "floor": 0.2})
    assert "same-speaker ceiling not measured (needs two reference clips of one speaker)" in line
    assert "different-speaker floor 0.200" in line
