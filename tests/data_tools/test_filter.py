import json

import numpy as np
import pytest

from data_tools.stages import filter as filt
from kani_adapt.scorers import textnorm
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.filter import FilterConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.speech.quality import Features, measure
from data_tools.records import read_jsonl, read_stage_results
from dt_helpers import SENTENCES, espeak, good_clip, needs_espeak, run_stage, with_silence, write


def feats(**kw):
    base = dict(duration=3.0, clipped_fraction=0.0, snr_db=40.0, peak_db=-15.0,
                silence_ratio=0.2, chars_per_second=12.0, fingerprint=[1.0])
    return Features(**{**base, **kw})


@pytest.mark.parametrize("change, reason", [
    (dict(duration=0.5), "too_short"), (dict(duration=30.0), "too_long"),
    (dict(clipped_fraction=0.01), "clipped"), (dict(snr_db=5.0), "low_snr"),
    (dict(peak_db=-70.0), "silent"), (dict(silence_ratio=0.9), "mostly_silence"),
])
def test_each_rule_rejects_only_its_own_case(change, reason):
    cfg = FilterConfig()
    assert filt.item_reasons(feats(), 22050, "some text", cfg) == []
    assert [r for r, _ in filt.item_reasons(feats(**change), 22050, "some text", cfg)] == [reason]


def test_low_original_rate_and_empty_text_are_rejected():
    cfg = FilterConfig()
    assert [r for r, _ in filt.item_reasons(feats(), 8000, "x", cfg)] == ["low_sample_rate"]
    assert [r for r, _ in filt.item_reasons(feats(), 22050, " ", cfg)] == ["empty_transcript"]


def test_speaking_rate_outliers_are_judged_per_speaker():
    rates = {f"a{i}": ("a", 12.0 + 0.2 * i) for i in range(6)}
    rates |= {f"b{i}": ("b", 20.0 + 0.2 * i) for i in range(6)}  # fast speaker: not an outlier
    rates["a_fast"] = ("a", 30.0)
    assert set(filt.rate_outliers(rates, mads=4.0)) == {"a_fast"}
    assert filt.rate_outliers({"x": ("c", 50.0)}, mads=4.0) == {}  # too few clips to judge


def test_duplicates_exact_and_near():
    rng = np.random.default_rng(0)
    fp = rng.standard_normal(64)
    fp /= np.linalg.norm(fp)
    other = rng.standard_normal(64)
    other /= np.linalg.norm(other)
    items = [("a", "k1", 3.0, fp), ("b", "k1", 3.0, fp), ("c", "k2", 3.01, fp * 0.999 + 1e-4),
             ("d", "k3", 3.0, other), ("e", "k4", 6.0, fp)]
    assert filt.duplicates(items, 0.995) == {"b": "a", "c": "a"}


def test_text_normalisation_is_the_frontend():
    assert textnorm.normalise("Ich habe 3  Katzen", "de") == "Ich habe drei Katzen"
    assert textnorm.normalise("cafe\u0301 12", "xx") == "caf\u00e9 12"  # unknown: digits kept


def test_coverage_flags_byte_fallback_characters():
    from kani_adapt.models.generator.tokenizer import build_offline_text_tokenizer

    report = textnorm.coverage(["abc é", "ab"], build_offline_text_tokenizer())
    assert report["byte_fallback"] == {"é": 1}
    assert report["unknown"] == {}
    assert report["tokens_per_character"] > 1.0  # é costs two byte tokens


@needs_espeak
def test_measure_separates_clean_clipped_and_silent_speech():
    speech, sr = espeak(SENTENCES[1])
    clean = measure(with_silence(speech, sr, 0.2, 0.2), sr, SENTENCES[1])
    clipped = measure(np.clip(speech * 20, -1, 1), sr, SENTENCES[1])
    silent = measure(np.random.default_rng(0).standard_normal(sr * 3).astype(np.float32) * 1e-4,
                     sr, "x")
    cfg = FilterConfig()
    assert filt.item_reasons(clean, 22050, "x", cfg) == []
    assert "clipped" in [r for r, _ in filt.item_reasons(clipped, 22050, "x", cfg)]
    assert "silent" in [r for r, _ in filt.item_reasons(silent, 22050, "x", cfg)]


@needs_espeak
def test_filter_stage_rejects_planted_files_and_keeps_good_ones(tmp_path):
    root, work = tmp_path / "in", tmp_path / "work"
    for i in range(3):
        good_clip(root / "s" / f"good{i}.wav", i)
    (root / "s" / "z_copy.wav").write_bytes((root / "s" / "good0.wav").read_bytes())
    (root / "s" / "z_copy.txt").write_text(SENTENCES[0])
    speech, sr = espeak(SENTENCES[1])
    write(root / "s" / "z_quieter.wav", with_silence(speech, sr, 0.3, 0.3, seed=1) * 0.5, sr,
          SENTENCES[1])  # same content re-levelled: a near duplicate of good1
    write(root / "s" / "clipped.wav", np.clip(speech * 20, -1, 1), sr, SENTENCES[1] + " again")
    write(root / "s" / "silent.wav", np.zeros(sr * 3, np.float32), sr, "nothing at all")
    utts = run_stage("ingest", work, ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    from kani_adapt.models.generator.tokenizer import build_offline_text_tokenizer
    kept = run_stage("filter", work, utts, budget=1.0,
                     given={"tokenizer": build_offline_text_tokenizer()})
    reasons = {r["id"].rsplit("/", 1)[1]: r["reason"] for r in read_jsonl(work / "rejected.jsonl")}
    assert reasons == {"z_copy": "duplicate", "z_quieter": "duplicate", "clipped": "clipped",
                       "silent": "silent"}
    assert sorted(u.id.rsplit("/", 1)[1] for u in kept) == ["good0", "good1", "good2"]
    assert json.loads((work / "filter" / "coverage.json").read_text())["characters"] > 0


def test_the_filter_reads_each_text_in_its_tag_s_language(tmp_path):
    from kani_adapt.text.tags import Tag

    root, work = tmp_path / "in", tmp_path / "work"
    rng = np.random.default_rng(0)
    write(root / "s" / "a.wav", (rng.standard_normal(22050 * 2) * 0.1).astype(np.float32), 22050,
          "3 Katzen")
    utts = run_stage("ingest", work, ingest=IngestConfig(sources=[SourceConfig(path=str(root),
                                                                               tag="hessisch")]))
    tags = {"hessisch": Tag(language="de")}
    cfg = FilterConfig(min_snr_db=-100, max_silence_ratio=1.0)
    run_stage("filter", work, utts, budget=1.0, filter=cfg, tags=tags)
    read = [r["extra"]["utt"]["text"] for r in read_stage_results(work, "filter").values()]
    assert read == ["drei Katzen"]  # German numbers, though the tag does not say "de"
    stored = json.loads((work / "filter" / "text_frontend.json").read_text())
    assert stored["languages"] == {"hessisch": "de"}  # training reads it back from the dataset
