"""Evaluation's scorers are registered in one place: a new one is one registry entry, and its
metrics reach the rows, the metric list and the directions monitors and reports read."""
import numpy as np
import pytest

from kani_adapt.eval import scoring
from kani_adapt.eval.config import ScorerConfig


def _fill_rms(model, cfg, clips, rate, rows):
    for row, clip in zip(rows, clips):
        row["rms"] = float(np.sqrt(np.mean(clip.audio ** 2)))


LOUDNESS = scoring.Scorer("loudness", {"rms": True}, lambda cfg: True, lambda cfg, device: "model",
                          _fill_rms)


def test_a_registered_scorer_runs_and_its_metric_is_known_everywhere(monkeypatch):
    monkeypatch.setattr(scoring, "REGISTRY", scoring.REGISTRY + (LOUDNESS,))
    cfg = ScorerConfig(dnsmos=False)
    scorers = scoring.Scorers(cfg, "cpu")
    assert scorers.models == {"loudness": "model"} and scorers.names() == ["failure", "rms"]
    clip = scoring.Clip(audio=np.full(16000, 0.5, np.float32), text="hello there", speaker="a")
    [row] = scorers.score([clip], 16000)
    assert row["rms"] == pytest.approx(0.5) and "failure" in row
    assert scoring.higher_is_better()["rms"] is True  # monitors, early stopping, the report


def test_the_built_in_registry_gives_the_metrics_each_switch_promises():
    assert scoring.metric_names(ScorerConfig()) == [
        "failure", "dnsmos_p808", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"]
    every = ScorerConfig(asr="a", speaker_embedder="b", xvector="c", accent_model="d")
    assert scoring.metric_names(every) == [
        "failure", "dnsmos_p808", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "cer", "wer",
        "catastrophic", "lang_prob", "similarity", "similarity_xvector", "accent_correct"]
    assert set(scoring.higher_is_better()) == \
        set(scoring.metric_names(every)) | set(scoring.DERIVED) | set(scoring.CORPUS)
    assert [m for m, up in scoring.higher_is_better().items() if not up] == [
        "cer", "wer", "catastrophic", "failure", "onset_entropy", "corpus_cer", "corpus_wer"]
