"""A scorer added to the registry alone reaches everything evaluation shows: preflight checks its
model key, the eval run scores every clip with it, eval.md / eval.json carry its headline metric
in the summary and the verdict, and index.html shows it beside each clip. Nothing but the
registry (and the config it reads) is changed: the real preflight, ``run_eval``, report and page
run on a tiny world."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from kani_adapt.config.sampling import SeededSampling
from kani_adapt.eval.config import EvalConfig
from kani_adapt.eval.evalset import EvalItem
from kani_adapt.scorers import registry
from kani_adapt.scorers.config import ScorerConfig
from kani_adapt.text.tags import Tag
from tests.scorers.speech import speak


@dataclass
class WithLoudness(ScorerConfig):
    loudness_model: str = ""  # the new scorer's switch: a folder with config.json


def _load(setup, device):
    return json.loads((Path(setup.cfg.loudness_model) / "config.json").read_text())["gain"]


def _score(gain, setup, clips, rate, rows):
    for row, clip in zip(rows, clips):
        row["loudness"] = gain * float(np.sqrt(np.mean(np.square(clip.audio, dtype=np.float64))))


LOUDNESS = registry.Scorer(
    "loudness", (registry.Metric("loudness", True, headline=7, column=8),),
    lambda cfg: bool(getattr(cfg, "loudness_model", "")), _load, _score,
    models={"loudness_model": "loudness model"})


@pytest.fixture
def with_loudness(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", registry.REGISTRY + (LOUDNESS,))


def _config(model: str) -> EvalConfig:
    return EvalConfig(codec="tiny", device="cpu", resamples=50, short_probes=False,
                      sampling=SeededSampling(max_frames=6),
                      scorers=WithLoudness(dnsmos=False, loudness_model=model))


def test_preflight_checks_the_model_key_a_registered_scorer_declares(with_loudness, tmp_path):
    from kani_adapt.eval.preflight import eval_findings

    missing = [f.line for f in eval_findings(_config(str(tmp_path / "nowhere")), codec=False)]
    assert len(missing) == 1 and missing[0].startswith("scorers.loudness_model: ")
    assert "no such loudness model folder" in missing[0]
    (tmp_path / "model").mkdir()
    lacking = eval_findings(_config(str(tmp_path / "model")), codec=False)
    assert [f.line for f in lacking] == [f"scorers.loudness_model: {tmp_path / 'model'} is not a "
                                         "loudness model folder (it lacks config.json)"]


@pytest.mark.slow
def test_a_registered_scorer_reaches_the_report_and_the_page(with_loudness, base_ckpt, tmp_path):
    import pandas as pd

    from kani_adapt.eval.evaluate import run_eval
    from kani_adapt.eval.preflight import eval_findings

    model = tmp_path / "loudness"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"gain": 2.0}))
    items = []
    for speaker, voice in (("anna", "en+f3"), ("ben", "en+m3")):
        speak("it is a lovely day", tmp_path, voice, speaker)
        items.append(EvalItem(id=f"{speaker}-0", text="the bus leaves at nine", speaker=speaker,
                              tag="en", reference=tmp_path / f"{speaker}.wav",
                              reference_text="it is a lovely day"))
    cfg = _config(str(model))
    cfg.tags = {"en": Tag(description="English as spoken in England")}  # kept for listeners
    assert eval_findings(cfg) == []
    out = tmp_path / "eval"
    result = run_eval(str(base_ckpt), items, cfg, out, eval_set="tiny world")

    rows = pd.read_parquet(out / "utterances.parquet")
    adapted = rows[rows.checkpoint == Path(base_ckpt).name]
    assert len(adapted) == 2 and adapted["loudness"].notna().all()
    from kani_adapt.audio import read
    for _, row in adapted.iterrows():  # the clip it scored is the one written (at the codec rate)
        audio = read(out / "wavs" / row["checkpoint"] / f"{row['item']}_s0.wav").audio
        assert row["loudness"] == pytest.approx(2.0 * np.sqrt(np.mean(audio ** 2)), abs=2e-3)
    assert "loudness" in result["metrics"]
    mean = float(adapted["loudness"].mean())
    summary = result["summary"][Path(base_ckpt).name]["loudness"]["all"]
    assert summary["mean"] == pytest.approx(mean)
    verdict = result["verdicts"][0]
    assert f"loudness {mean:.3f}" in verdict
    assert verdict.index("failure") < verdict.index("loudness")  # its place among the key metrics

    saved = json.loads((out / "eval.json").read_text())
    assert saved["verdicts"] == result["verdicts"] and "loudness" in saved["metrics"]
    assert saved["tags"]["en"] == {"language": "en", "description": "English as spoken in England",
                                   "asr_language": "en", "accent_label": ""}
    md = (out / "eval.md").read_text()
    assert f"| loudness | {mean:.3f} [" in md and f"- {verdict}" in md
    page = (out / "index.html").read_text()
    shown = {f"loudness {v:.3f}" for v in adapted["loudness"]}
    assert all(s in page for s in shown), shown
