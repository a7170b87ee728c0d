"""DNSMOS in the filter stage, and the outliers stage after embed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data_tools.stages.filter import FilterConfig

from data_tools.stages.outliers import OutliersConfig
from data_tools.records import Utterance, read_jsonl
from data_tools.records import read_stage_results
from dt_helpers import SENTENCES, espeak, needs_espeak, run_stage, with_silence


def _utt(work, name, audio, rate, text="", speaker="anna"):
    import soundfile as sf

    path = work / "ingest" / "audio" / "rec" / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate)
    return Utterance(id=f"rec/{name}", audio=path.relative_to(work).as_posix(), text=text,
                     speaker=speaker, tag="en", duration=len(audio) / rate,
                     orig_sample_rate=rate, sha256=name)


@pytest.mark.slow
@needs_espeak
def test_dnsmos_rejects_the_noisy_copy_and_keeps_the_clean_clip(tmp_path):
    from tests.scorers.speech import with_noise

    work = tmp_path / "work"
    audio, rate = espeak(SENTENCES[0])
    audio = with_silence(audio, rate, 0.3, 0.3)
    utts = [_utt(work, "clean", audio, rate, SENTENCES[0]),
            _utt(work, "noisy", with_noise(audio, 10.0), rate, SENTENCES[0])]
    # the SNR rule is turned off so that DNSMOS alone decides
    cfg = FilterConfig(dnsmos=True, min_snr_db=-100.0, max_silence_ratio=1.0)
    kept = run_stage("filter", work, inputs=utts, budget=1.0, filter=cfg)
    assert [u.id for u in kept] == ["rec/clean"]
    [record] = list(read_jsonl(work / "rejected.jsonl"))
    assert record["id"] == "rec/noisy" and record["reason"] == "low_dnsmos"
    scores = {k: r["extra"]["columns"][k] for k, r in read_stage_results(work, "filter").items()}
    assert set(scores["rec/clean"]) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808",
                                         "snr_db"}  # the estimated SNR is a column too
    assert scores["rec/clean"]["dnsmos_ovrl"] > cfg.min_dnsmos > scores["rec/noisy"]["dnsmos_ovrl"]


class ByLength(torch.nn.Module):
    """A speaker embedder whose vector is chosen by clip length (the test plants an outlier)."""

    def __init__(self, vectors: dict[int, np.ndarray]):
        super().__init__()
        self.vectors = vectors

    def forward(self, audio, lengths):
        return torch.stack([torch.as_tensor(self.vectors[int(n) // 16000], dtype=torch.float32)
                            for n in lengths])


def test_a_clip_far_from_its_speakers_centroid_is_rejected_as_speaker_outlier(tmp_path):
    rng = np.random.default_rng(0)
    work = tmp_path / "work"
    voice, other = rng.standard_normal(128), rng.standard_normal(128)
    vectors = {s: voice + 0.1 * rng.standard_normal(128) for s in range(1, 7)}
    vectors[7] = other  # the seventh clip holds another voice
    utts = [_utt(work, f"c{s}", (0.1 * rng.standard_normal(22050 * s)).astype(np.float32), 22050)
            for s in vectors]
    run_stage("embed", work, inputs=utts, given={"embedder": ByLength(vectors)})
    kept = run_stage("outliers", work, inputs=utts)
    assert sorted(u.id for u in kept) == [f"rec/c{s}" for s in range(1, 7)]
    [record] = list(read_jsonl(work / "rejected.jsonl"))
    assert record["id"] == "rec/c7" and record["reason"] == "speaker_outlier"
    assert "centroid" in record["detail"]
    # configurable: with statistics needing more clips than the speaker has, nothing is flagged
    kept = run_stage("outliers", work, inputs=utts, outliers=OutliersConfig(min_clips=50))
    assert len(kept) == 7
