"""Alignment code tested on real MFA output (tests/fixtures/mfa-espeak-en) without MFA."""
import os
import shutil
import stat
import sys

import pytest
import soundfile as sf

from data_tools.stages import align
from data_tools.speech import mfa
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.align import AlignConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.speech.mfa import Word
from data_tools.records import Utterance, read_jsonl
from dt_helpers import FIXTURE, run_stage
from kani_adapt.core.errors import DataError


def fixture_items():
    for lab in sorted((FIXTURE / "corpus").rglob("*.lab")):
        grid = FIXTURE / "mfa_textgrids" / lab.parent.name / f"{lab.stem}.TextGrid"
        yield lab, grid


def test_mfa_textgrids_read_back_as_the_transcript_words():
    items = list(fixture_items())
    assert len(items) >= 40
    for lab, grid in items:
        words = mfa.read_words(grid)
        assert [w.text for w in words] == mfa.words_of(lab.read_text())
        assert all(0 <= w.start < w.end for w in words)
        assert all(a.end <= b.start for a, b in zip(words, words[1:]))
        assert align.word_match(words, lab.read_text()) == 1.0


def test_grapheme_dictionary_matches_the_one_mfa_was_trained_with():
    texts = [lab.read_text() for lab, _ in fixture_items()]
    ours = set(mfa.grapheme_dictionary(texts).splitlines())
    theirs = set((FIXTURE / "grapheme_dict.txt").read_text().splitlines())
    assert ours == theirs


def test_corpus_is_written_in_the_layout_mfa_read(tmp_path):
    work = tmp_path / "work"
    utts = run_stage("ingest", work, ingest=IngestConfig(
        sources=[SourceConfig(path=str(FIXTURE / "corpus"), name="fx")]))
    names = mfa.write_corpus(utts[:6], work, tmp_path / "corpus")
    for name, utt_id in names.items():
        wav = tmp_path / "corpus" / utt_id.split("/")[1] / f"{name}.wav"
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.channels == 1
        original = FIXTURE / "corpus" / (utt_id.split("/", 1)[1] + ".lab")
        assert wav.with_suffix(".lab").read_text().split() == original.read_text().split()
        assert abs(info.duration - sf.info(original.with_suffix(".wav")).duration) < 1e-3


def test_decisions_from_real_word_timings():
    lab, grid = next(fixture_items())
    words = mfa.read_words(grid)
    text = lab.read_text().strip()
    utt = Utterance("fx/a", "a.wav", text, "s", duration=sf.info(lab.with_suffix(".wav")).duration)
    cfg = AlignConfig(pad_seconds=0.1)
    [(suffix, start, end, kept)] = align.decide(utt, words, cfg)
    assert suffix == "" and kept == text
    assert start == pytest.approx(max(0.0, words[0].start - 0.1))
    assert end == pytest.approx(min(utt.duration, words[-1].end + 0.1))
    wrong = Utterance("fx/b", "a.wav", "completely different words here", "s", duration=2.0)
    assert align.decide(wrong, words, cfg) == "poor_alignment"
    assert align.decide(utt, [], cfg) == "alignment_failed"


def test_long_recording_is_split_at_sentence_ends():
    # A long reading: fixture utterances one after another, each a sentence.
    words, sentences, offset = [], [], 0.0
    for lab, grid in list(fixture_items())[:12]:
        ws = mfa.read_words(grid)
        words += [Word(w.start + offset, w.end + offset, w.text) for w in ws]
        sentences.append(lab.read_text().strip().capitalize() + ".")
        offset += ws[-1].end + 0.5
    text = " ".join(sentences)
    utt = Utterance("fx/long", "a.wav", text, "s", duration=offset)
    pieces = align.decide(utt, words, AlignConfig(max_seconds=6.0, pad_seconds=0.1))
    assert len(pieces) >= 2
    assert " ".join(p[3] for p in pieces) == text  # no word lost or repeated
    assert all(p[3].endswith(".") for p in pieces)  # every cut at a sentence end
    assert all(p[2] - p[1] <= 6.0 for p in pieces)
    assert all(a[2] <= b[1] + 0.2 for a, b in zip(pieces, pieces[1:]))


def test_missing_mfa_names_the_conda_install(monkeypatch, tmp_path):
    with pytest.raises(DataError, match="conda install -c conda-forge montreal-forced-aligner"):
        mfa.require_mfa("mfa-not-installed-here")


FAKE_MFA = '''#!{python}
"""Stands in for MFA: records its calls, and for `align` copies the fixture's real TextGrids."""
import os, shutil, sys
from pathlib import Path
Path(os.environ["MFA_ROOT_DIR"], "calls.txt").open("a").write(sys.argv[1] + "\\n")
if sys.argv[1] == "align":
    corpus, out = Path(sys.argv[2]), Path(sys.argv[5])
    for wav in corpus.rglob("*.wav"):
        src = Path("{fixture}") / "mfa_textgrids" / wav.parent.name / (wav.stem.split("__")[-1] + ".TextGrid")
        if src.exists() and "003" not in wav.stem:  # leave one clip unaligned
            (out / wav.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, out / wav.parent.name / (wav.stem + ".TextGrid"))
'''


def test_align_stage_drives_mfa_and_applies_its_timings(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mfa"
    fake.write_text(FAKE_MFA.format(python=sys.executable, fixture=FIXTURE))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    src = tmp_path / "corpus"
    shutil.copytree(FIXTURE / "corpus" / "spk_en_m", src / "spk_en_m")
    utts = run_stage("ingest", work, ingest=IngestConfig(
        sources=[SourceConfig(path=str(src), name="fx")]))
    kept = run_stage("align", work, utts)
    calls = (work / "align" / "mfa_root" / "calls.txt").read_text().split()
    assert calls == ["validate", "train", "align"]
    assert len(kept) == len(utts) - 1
    assert [r["reason"] for r in read_jsonl(work / "rejected.jsonl")] == ["alignment_failed"]
    by_id = {u.id: u for u in utts}
    for u in kept:
        assert u.duration < by_id[u.id].duration  # trimmed to the words
    assert run_stage("align", work, utts) == kept  # resumed: nothing re-run
    assert (work / "align" / "mfa_root" / "calls.txt").read_text().split() == calls


@pytest.mark.mfa
@pytest.mark.slow
def test_real_mfa_reproduces_the_fixture_alignments(tmp_path):
    """Where MFA is installed: train on the fixture corpus and align it; word boundaries must
    land near the ones MFA wrote for the fixture (median error was 12-16 ms there)."""
    import numpy as np

    work = tmp_path / "work"
    utts = run_stage("ingest", work, ingest=IngestConfig(
        sources=[SourceConfig(path=str(FIXTURE / "corpus"), name="fx")]))
    cfg = AlignConfig(pad_seconds=0.0, train_config=str(FIXTURE / "mfa_train_fast.yaml"))
    words = align.align_corpus(utts, work, cfg)
    assert len(words) >= 0.9 * len(utts)
    errors = []
    for utt_id, ws in words.items():
        grid = FIXTURE / "mfa_textgrids" / (utt_id.split("/", 1)[1] + ".TextGrid")
        ref = mfa.read_words(grid)
        if [w.text for w in ws] == [w.text for w in ref]:
            errors += [abs(a.start - b.start) for a, b in zip(ws, ref)]
    assert errors and float(np.median(errors)) < 0.05
