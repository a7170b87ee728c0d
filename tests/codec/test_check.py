import json
import math
import re

import pytest
import torch

from kani_adapt.cli.main import main
from kani_adapt.codec import check
from kani_adapt.codec.manifest import Clip, read_manifest
from kani_adapt.core.errors import DataError


class FakeCodec:
    """Returns the input (plus optional noise) so the report's decisions have a known answer."""

    sample_rate, samples_per_frame, num_codebooks, codebook_size = 22050, 1764, 4, 4032

    def __init__(self, noise: float):
        self.noise, self._audio = noise, None

    def encode(self, audio, lengths):
        self._audio = audio
        frames = -(-lengths // self.samples_per_frame)
        return torch.zeros(audio.shape[0], 4, int(frames.max()), dtype=torch.long), frames

    def decode(self, codes, frames):
        gen = torch.Generator().manual_seed(0)
        out = self._audio + self.noise * torch.randn(self._audio.shape, generator=gen)
        return out, torch.tensor([out.shape[1]])


def test_sample_spreads_over_speakers():
    clips = [Clip(f"{s}{i}.wav", 1.0, speaker=s) for s in "ab" for i in range(10 if s == "a" else 2)]
    chosen = check.sample_clips(clips, 4, seed=0)
    assert sorted(c.speaker for c in chosen) == ["a", "a", "b", "b"]
    assert check.sample_clips(clips, 4, seed=0) == chosen


def test_verdict_names_the_group_over_the_poor_share():
    limits = check.Thresholds(mel_max=0.3, stoi_min=0.8, poor_share_max=0.2)
    good = {"mel": 0.1, "stft": 0.1, "si_sdr": 10.0, "stoi": 0.95}
    scores = [check.ClipScore(f"a{i}", "anna", "de", 1.0, good) for i in range(4)]
    assert check.verdict(check.summarize(scores, limits), limits) == "verdict: codec fine as is"
    scores.append(check.ClipScore("b", "ben", "de", 1.0, dict(good, stoi=0.5)))
    summary = check.summarize(scores, limits)
    assert summary["speaker"]["ben"]["poor_share"] == 1.0 and summary["tag"]["de"]["poor_share"] == 0.2
    line = check.verdict(summary, limits)
    assert line.startswith("verdict: fine-tune recommended") and "speaker ben" in line
    assert "tag de" not in line  # 20% is not above the 20% limit


def test_nan_stoi_does_not_make_a_clip_poor():
    limits = check.Thresholds()
    assert not limits.is_poor({"mel": 0.1, "stft": 0.1, "si_sdr": 1.0, "stoi": math.nan})


def test_clean_codec_passes_and_noisy_codec_fails(corpus, tmp_path):
    clips = read_manifest(corpus)
    codecs = {"clean": ("clean", FakeCodec(0.0)), "noisy": ("noisy", FakeCodec(0.3))}
    reports = check.run_check(codecs, clips, check.Thresholds(), max_clips=4, max_seconds=5, seed=0,
                              audio_dir=tmp_path / "wavs")
    assert reports["clean"]["verdict"] == "verdict: codec fine as is"
    assert reports["noisy"]["verdict"].startswith("verdict: fine-tune recommended")
    assert set(reports["noisy"]["summary"]["speaker"]) == {"anna", "ben"}
    md, js = check.write_report(reports, check.Thresholds(), tmp_path)
    text = md.read_text()
    assert "| speaker anna |" in text and "noisy stoi" in text and "| tag en |" in text
    assert json.loads(js.read_text())["codecs"]["clean"]["summary"]["overall"]["clips"] == 4
    # players: each clip's original and both round trips, the noisy ones flagged poor
    page = (tmp_path / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page)
    assert len(sources) == 4 * 3 and all((tmp_path / s).is_file() for s in sources)
    assert {s.split("/")[1] for s in sources} == {"original", "clean", "noisy"}
    assert page.count('class="flag">poor') == 4 and "| speaker anna |" not in page  # tables rendered
    # the report points at files that are there
    pointed = re.findall(r"`([^`]+\.(?:wav|html))`", text)
    assert len(pointed) == 4 and all((tmp_path / p).is_file() for p in pointed)
    assert "kept no clips" in check.render_markdown(
        check.run_check(codecs, clips, check.Thresholds(), 1, 5, 0), check.Thresholds())


def test_manifest_problems_are_reported_together(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"audio_filepath": "a.wav"}\nnot json\n{"audio_filepath": "b.wav", "duration": -1}\n')
    with pytest.raises(DataError) as err:
        read_manifest(bad)
    assert all(f"m.json:{n}" in str(err.value) for n in (1, 2, 3))


@pytest.mark.slow
def test_codec_check_cli_writes_reports_side_by_side(tiny_nemo, tmp_path, capsys):
    from tests.codec.corpus import write_corpus

    manifest = write_corpus(tmp_path / "corpus", rate=16000)  # resampled to 22050 on load
    out = tmp_path / "report"
    rc = main(["codec", "check", "--codec", str(tiny_nemo), "--manifest", str(manifest),
               "--compare", "tiny", "--out", str(out), "--max-clips", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.count("verdict: ") == 2
    report = json.loads((out / "codec_check.json").read_text())
    assert set(report["codecs"]) == {"base", "compare"}
    assert (out / "index.html").is_file() and len(list((out / "wavs" / "compare").glob("*.wav"))) == 3
    assert report["codecs"]["base"]["summary"]["overall"]["clips"] == 3
    # A random codec garbles audio: the report must say so.
    assert "fine-tune recommended" in report["codecs"]["base"]["verdict"]


def test_codec_check_cli_bad_manifest_is_one_line(tmp_path, capsys):
    rc = main(["codec", "check", "--codec", "tiny", "--manifest", str(tmp_path / "none.json")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "none.json" in err and "\n" not in err
