"""The scorers are registered in one place: a new one is one registry entry, and its metrics reach
the rows, the metric lists, the directions monitors and reports read, preflight's model keys and
the report's and page's choices of what to show."""
import numpy as np
import pytest

from kani_adapt.scorers import registry
from kani_adapt.scorers.config import ScorerConfig


def _fill_rms(model, setup, clips, rate, rows):
    for row, clip in zip(rows, clips):
        row["rms"] = float(np.sqrt(np.mean(clip.audio ** 2)))


LOUDNESS = registry.Scorer("loudness", (registry.Metric("rms", True),), lambda cfg: True,
                           lambda setup, device: "model", _fill_rms)


def test_a_registered_scorer_runs_and_its_metric_is_known_everywhere(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", registry.REGISTRY + (LOUDNESS,))
    cfg = ScorerConfig(dnsmos=False)
    scorers = registry.Scorers(cfg, "cpu")
    assert scorers.models == {"loudness": "model"} and scorers.names() == ["failure", "rms"]
    clip = registry.Clip(audio=np.full(16000, 0.5, np.float32), text="hello there", speaker="a")
    [row] = scorers.score([clip], 16000)
    assert row["rms"] == pytest.approx(0.5) and "failure" in row
    assert registry.higher_is_better()["rms"] is True  # monitors, early stopping, the report


def test_the_failure_detectors_run_after_the_scorers_whose_rows_they_read(monkeypatch):
    def heard_nothing(model, setup, clips, rate, rows):
        for row in rows:
            row["asr_text"] = ""
    deaf = registry.Scorer("deaf", (), lambda cfg: True, lambda setup, device: None, heard_nothing)
    monkeypatch.setattr(registry, "REGISTRY", registry.REGISTRY + (deaf,))
    t = np.arange(16000) / 16000
    clip = registry.Clip(audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
                         text="hi there", speaker="a")
    [row] = registry.Scorers(ScorerConfig(dnsmos=False), "cpu").score([clip], 16000)
    assert "empty_transcript" in row["failure_reasons"]  # registered after them, read by them


def test_the_built_in_registry_gives_the_metrics_each_switch_promises():
    assert registry.metric_names(ScorerConfig()) == [
        "failure", "dnsmos_p808", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"]
    every = ScorerConfig(asr="a", speaker_embedder="b", xvector="c", accent_model="d",
                         accent_classifiers={"en": "e"}, phoneme_model="f", ctc_asr="g")
    assert registry.metric_names(every) == [
        "failure", "dnsmos_p808", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "cer", "wer",
        "catastrophic", "lang_prob", "similarity", "similarity_xvector", "accent_correct",
        "accent_posterior", "per", "per_unheard", "ctc_wer"]
    assert registry.derived_metrics(ScorerConfig()) == ["onset_entropy"]
    assert registry.derived_metrics(every) == ["similarity_norm", "accent_shift", "per_relative",
                                               "onset_entropy"]
    assert registry.corpus_rates() == {"corpus_cer": ("char_edits", "ref_chars"),
                                       "corpus_wer": ("word_edits", "ref_words"),
                                       "corpus_per": ("per_edits", "ref_phones"),
                                       "corpus_ctc_wer": ("ctc_word_edits", "ctc_ref_words")}
    assert set(registry.higher_is_better()) == set(registry.metric_names(every)) | {
        "similarity_norm", "onset_entropy", "corpus_cer", "corpus_wer", "accent_shift",
        "per_relative", "corpus_per", "corpus_ctc_wer"}
    assert sorted(m for m, up in registry.higher_is_better().items() if not up) == sorted([
        "cer", "wer", "catastrophic", "failure", "onset_entropy", "corpus_cer", "corpus_wer",
        "per", "per_unheard", "per_relative", "corpus_per", "ctc_wer", "corpus_ctc_wer"])


def test_what_the_report_page_and_preflight_show_comes_from_the_entries():
    assert registry.headline() == ["cer", "corpus_cer", "catastrophic", "similarity",
                                   "dnsmos_p808", "failure", "accent_posterior", "accent_shift",
                                   "corpus_per"]
    assert registry.anchored() == ["cer", "corpus_wer", "similarity_norm", "dnsmos_p808",
                                   "catastrophic", "accent_posterior", "accent_shift", "corpus_per"]
    assert registry.columns() == ["cer", "wer", "similarity", "dnsmos_p808", "dnsmos_ovrl",
                                  "lang_prob", "accent_correct", "accent_posterior",
                                  "accent_shift", "per"]
    assert [key for key, *_ in registry.model_keys()] == [
        "asr", "speaker_embedder", "xvector", "accent_model", "accent_classifiers",
        "phoneme_model", "ctc_asr"]


def test_every_place_and_model_key_is_taken_once_and_names_a_real_switch():
    names = [m.name for m in registry.every_metric()]
    assert len(names) == len(set(names))
    for place in ("headline", "anchor", "column"):
        ranks = [getattr(m, place) for m in registry.every_metric() if getattr(m, place)]
        assert len(ranks) == len(set(ranks)), place
    fields = set(ScorerConfig.__dataclass_fields__)
    assert {key for key, *_ in registry.model_keys()} <= fields
