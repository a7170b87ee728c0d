import json
import re
import shutil

import pytest

from data_tools.stages.filter import FilterConfig
import yaml

from data_tools.cli import main
from data_tools.contribute import checks
from data_tools.contribute.card import read_card
from data_tools.contribute.config import ContributeConfig
from data_tools.contribute.records import Clip
from data_tools.contribute.validate import validate
from dt_helpers import SENTENCES, espeak, needs_espeak, plant_bad_files, with_silence, write

pytestmark = needs_espeak
# Three speakers (espeak at different speeds), 4 clips each; s3 is the test split.
SPEAKERS = {"s1": ("train", 140), "s2": ("train", 170), "s3": ("test", 200)}
CFG = dict(min_hours=0.002, min_speakers=3)  # a few seconds per tag suffice in tests


def card(speakers: dict, accent_of: dict | None = None, **change) -> str:
    data = {"pretty_name": "Test accent", "license": "cc-by-4.0", "language": "en",
            "accent": "en_glasgow",
            "consent": {"statement": "All speakers agreed in writing on 2025-01-01.",
                        "recording": True, "redistribution": True, "tts_training": True},
            "speakers": [{"id": s, "clips": n} | ({"accent": accent_of[s]} if accent_of else {})
                         for s, n in speakers.items()]}
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    return "---\n" + yaml.safe_dump(data) + "---\n\n# Test accent\n\nRead speech.\n"


def clip(root, split, speaker, i, speed, text=""):
    text = text or SENTENCES[i % len(SENTENCES)]
    audio, sr = espeak(text, speed=speed)
    write(root / "audio" / split / speaker / f"c{i}.wav",
          with_silence(audio, sr, 0.2, 0.2, seed=i), sr, text)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("contrib") / "good"
    for speaker, (split, speed) in SPEAKERS.items():
        for i in range(4):
            clip(root, split, speaker, i, speed)
    (root / "README.md").write_text(card({s: 4 for s in SPEAKERS}), encoding="utf-8")
    return root


def reasons(result) -> dict[str, list[str]]:
    out = {}
    for p in result.problems:
        out.setdefault(p.reason, []).append(p.detail)
    return out


def test_good_dataset_is_accepted_and_alignment_is_never_reported_as_passed(good):
    result = validate(good, ContributeConfig(**CFG))
    assert result.accepted, [p.line() for p in result.problems]
    status = {c.name: c.status for c in result.checks}
    assert status["alignment"] == ("skipped" if shutil.which("mfa") is None else "passed")
    assert {s for n, s in status.items() if n != "alignment"} == {"passed"}
    stats = result.stats
    assert stats["readable_clips"] == 12 and stats["accents"]["en_glasgow"]["speakers"] == 3
    assert stats["speakers_per_split"] == {"test": 1, "train": 2}
    assert abs(sum(stats["hours_per_split"].values()) - stats["hours"]) < 1e-3


def test_planted_bad_dataset_is_rejected_with_each_reason(good, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    clip(bad, "test", "s1", 5, 140, "the old clock stopped at noon")  # s1 in train and test
    shutil.copy(bad / "audio/train/s2/c1.wav", bad / "audio/train/s2/copy.wav")
    shutil.copy(bad / "audio/train/s2/c1.txt", bad / "audio/train/s2/copy.txt")
    clip(bad, "train", "s4", 0, 185)  # the only speaker of a second accent
    speakers = {"s1": 5, "s2": 5, "s3": 4, "s4": 1}
    accent_of = {"s1": "en_glasgow", "s2": "en_glasgow", "s3": "en_glasgow", "s4": "en_scouse"}
    (bad / "README.md").write_text(card(speakers, accent_of, license=None,
                                        accent=["en_glasgow", "en_scouse"]), encoding="utf-8")

    result = validate(bad, ContributeConfig(**CFG))
    found = reasons(result)
    assert not result.accepted
    assert {"license_missing", "speaker_in_several_splits", "duplicate",
            "too_few_speakers"} <= set(found)
    assert "'s1'" in found["speaker_in_several_splits"][0]
    assert found["duplicate"] == ["audio/train/s2/copy is the same audio as audio/train/s2/c1; "
                                  "remove one"]
    assert len(found["too_few_speakers"]) == 1 and "en_scouse" in found["too_few_speakers"][0]
    assert "speaker_accent_invalid" not in found and "speaker_count_mismatch" not in found
    status = {c.name: c.status for c in result.checks}
    assert status["card"] == status["splits"] == status["duplicates"] == "failed"


def test_unreadable_audio_and_transcript_problems_are_named(good, tmp_path):
    root = tmp_path / "files"
    shutil.copytree(good, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    expected = plant_bad_files(root / "audio" / "train", outside)  # speaker folder "bad"
    expected["escape"] = "outside_dataset_folder"
    (root / "audio" / "stray.wav").write_bytes(b"")  # not at <split>/<speaker>/
    result = validate(root, ContributeConfig(**CFG))
    found = reasons(result)
    for stem, reason in expected.items():
        assert any(f"/{stem}" in d for d in found.get(reason, [])), (stem, reason, found)
    assert "misplaced_file" in found and "speaker_not_in_card" in found
    assert not result.accepted


def test_card_problems_are_single_lines_naming_the_file_and_the_fix(tmp_path):
    (tmp_path / "README.md").write_text(card({"a": 1}, license="my-own", language="EN",
                                             consent={"statement": "", "recording": True}))
    _, problems = read_card(tmp_path)
    by_reason = {p.reason: p.detail for p in problems}
    assert set(by_reason) == {"license_unknown", "consent_statement_missing",
                              "consent_not_confirmed", "language_invalid"}
    for detail in by_reason.values():
        assert "\n" not in detail and detail.startswith("README.md: ")
    assert "license: other" in by_reason["license_unknown"]
    assert "redistribution" in by_reason["consent_not_confirmed"]


@pytest.mark.parametrize("text, reason", [
    (None, "card_missing"), ("no front matter here\n", "card_unparsable"),
    ("---\nlicense: [unclosed\n---\n", "card_unparsable"),
    ("---\n- a list\n---\n", "card_unparsable"),
])
def test_missing_or_broken_card_is_one_problem_with_a_fix(tmp_path, text, reason):
    if text is not None:
        (tmp_path / "README.md").write_text(text)
    card_, problems = read_card(tmp_path)
    assert card_ is None and [p.reason for p in problems] == [reason]
    assert str(tmp_path / "README.md") in problems[0].detail and "\n" not in problems[0].detail


def test_custom_licence_needs_its_text_and_restrictive_ones_only_warn(tmp_path):
    (tmp_path / "README.md").write_text(card({"a": 1}, license="other", license_name="x"))
    assert [p.reason for p in read_card(tmp_path)[1]] == ["license_text_missing"]
    (tmp_path / "README.md").write_text(card({"a": 1}, license="other", license_name="x",
                                             license_text="You may use it for TTS."))
    assert read_card(tmp_path)[1] == []
    (tmp_path / "README.md").write_text(card({"a": 1}, license="cc-by-nc-4.0"))
    assert [(p.reason, p.severity) for p in read_card(tmp_path)[1]] == \
        [("license_restricted", "warning")]


def test_unfilled_template_is_rejected(tmp_path):
    from pathlib import Path

    import data_tools

    template = Path(data_tools.__file__).parent / "templates" / "contribution_card.md"
    shutil.copy(template, tmp_path / "README.md")
    problems = {p.reason for p in read_card(tmp_path)[1]}
    assert {"consent_statement_missing", "consent_not_confirmed", "language_invalid",
            "accent_invalid"} <= problems


def test_split_and_accent_rules_directly():
    clips = [Clip(f"{sp}/{s}/x", None, sp, s, "t") for sp, s in
             [("train", "a"), ("test", "a"), ("train", "b"), ("validation", "c")]]
    assert [p.detail for p in checks.split_problems(clips)] == \
        ["speaker 'a' appears in test, train; keep each speaker in one split"]
    hours = {"en_x": {"a": 0.9, "b": 0.2, "c": 0.1}, "en_y": {"d": 0.5}}
    got = [(p.reason, p.severity) for p in checks.accent_problems(hours, 1.0, 2, 0.5)]
    assert got == [("dominant_speaker", "warning"), ("too_few_hours", "error"),
                   ("too_few_speakers", "error")]
    assert checks.accent_problems(hours, 0.5, 1, 0.8) == []


def test_card_speaker_counts_must_match_the_audio(tmp_path):
    (tmp_path / "README.md").write_text(card({"a": 2, "b": 1, "ghost": 3}))
    listed, _ = read_card(tmp_path)
    clips = [Clip(f"train/{s}/{i}", None, "train", s, "t") for s, i in
             [("a", 0), ("b", 0), ("b", 1), ("extra", 0)]]
    got = {p.reason: p.detail for p in checks.speaker_problems(listed, clips)}
    assert set(got) == {"speaker_not_in_card", "speaker_without_audio", "speaker_count_mismatch"}
    assert "'b' lists 1 clips but has 2" in got["speaker_count_mismatch"]
    assert "ghost" in got["speaker_without_audio"] and "extra" in got["speaker_not_in_card"]


def test_too_many_poor_clips_reject_but_a_few_only_warn(good):
    cfg = ContributeConfig(**CFG, filter=FilterConfig(min_snr_db=200.0))  # every clip now "noisy"
    result = validate(good, cfg)
    found = reasons(result)
    assert len(found["low_snr"]) == 12 and "too_many_poor_clips" in found
    assert not result.accepted
    result = validate(good, ContributeConfig(**CFG, filter=FilterConfig(min_snr_db=200.0), max_bad_clip_fraction=1))
    assert result.accepted and all(p.severity == "warning" for p in result.problems)


def test_cli_exit_codes_and_json_report(good, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["contribute", "validate", str(good), "--min-hours", "0.002", "--quiet",
                 "--json", str(out)]) == 0
    assert "ACCEPTED" in capsys.readouterr().out
    assert json.loads(out.read_text())["accepted"] is True
    assert main(["contribute", "validate", str(good), "--quiet"]) == 1  # default 1 h per tag
    assert "`too_few_hours`" in capsys.readouterr().out
    assert main(["contribute", "validate", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("min_hourz: 1\n")
    assert main(["contribute", "validate", str(good), "--config", str(cfg)]) == 2
    assert "did you mean 'min_hours'" in capsys.readouterr().err


def test_package_writes_a_dataset_that_load_dataset_reads_back(good, tmp_path, monkeypatch):
    import soundfile as sf
    from datasets import Audio, load_dataset

    from data_tools.contribute.card import front_matter

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "hf"
    assert main(["contribute", "package", str(good), "--out", str(out), "--quiet",
                 "--min-hours", "0.002"]) == 0
    ds = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert sorted(ds) == ["test", "train"] and (len(ds["train"]), len(ds["test"])) == (8, 4)
    assert isinstance(ds["train"].features["audio"], Audio)
    rows = ds["train"].cast_column("audio", Audio(decode=False))
    row = next(r for r in rows if r["id"] == "train/s2/c1")
    assert row["audio"]["bytes"] == (good / "audio/train/s2/c1.wav").read_bytes()
    assert row["text"] == (good / "audio/train/s2/c1.txt").read_text()
    assert (row["speaker"], row["accent"], row["language"], row["split"]) == \
        ("s2", "en_glasgow", "en", "train")
    assert abs(row["duration"] - sf.info(good / "audio/train/s2/c1.wav").duration) < 1e-3
    assert set(ds["test"]["speaker"]) == {"s3"}
    meta, body = front_matter((out / "README.md").read_text(), out / "README.md")
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["en"]
    assert "en_glasgow" in meta["tags"] and meta["size_categories"] == ["n<1K"]
    assert "All speakers agreed in writing" in body and "| s3 |" in body
    assert json.loads((out / "validation.json").read_text())["accepted"] is True
    assert not list(tmp_path.glob(".hf.*"))  # no temporary folder left behind
    assert main(["contribute", "package", str(good), "--out", str(out), "--quiet",
                 "--min-hours", "0.002"]) == 2  # exists: needs --overwrite


HOSTILE_BODY = ("# Hostile card\n\n<script>window.__pwned=1</script>\n\n"
                "[site](javascript:alert(1)) [also](JaVaScRiPt&#58;alert(2)) [doc](data:text/html,x) "
                "[vb](vbscript:msgbox(3)) <a href=\"javascript:alert(4)\">a</a> "
                "<img src=x onerror=alert(5)> [fine](https://example.org)\n\n"
                "[ref]: javascript:alert(6)\n")


def test_the_packaged_card_escapes_names_and_drops_script_links(good, tmp_path, capsys):
    """A speaker folder named by a payload passes the gate; the Hub card shows its name as text,
    the contributor's body keeps its web link and loses raw HTML and script links."""
    from markdown_it import MarkdownIt

    # (a name with a bidi override is refused by the gate itself: test_contribute_intake.py)
    hostile = {"s1": "<img src=x onerror=alert(7)>", "s2": "s2 `<svg onload=alert(9)>`", "s3": "s3"}
    root = shutil.copytree(good, tmp_path / "hostile")
    for old, new in hostile.items():
        split = SPEAKERS[old][0]
        (root / "audio" / split / old).rename(root / "audio" / split / new)
    text = card({hostile[s]: 4 for s in SPEAKERS}, pretty_name="<b>x</b>",
                consent={"statement": "Agreed [here](javascript:alert(8)) & in writing.",
                         "recording": True, "redistribution": True, "tts_training": True})
    (root / "README.md").write_text(text.split("---\n\n", 1)[0] + "---\n\n" + HOSTILE_BODY,
                                    encoding="utf-8")
    assert main(["contribute", "validate", str(root), "--quiet", "--min-hours", "0.002"]) == 0
    printed = capsys.readouterr().out  # the validation report on the console
    assert "<svg" not in printed and "&lt;svg onload=alert(9)&gt;" in printed
    out = tmp_path / "hf"
    assert main(["contribute", "package", str(root), "--out", str(out), "--quiet",
                 "--min-hours", "0.002"]) == 0
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "<svg" not in readme and "<img" not in readme
    # rendered the way the Hub renders Markdown (raw HTML on): nothing runs, nothing links away
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(readme)
    assert "<script" not in rendered and "<img" not in rendered and "<a href=\"javascript" not in rendered
    assert not re.search(r'href="(?!https://example\.org")', rendered), rendered
    assert 'href="https://example.org"' in rendered
    assert "<td>&lt;img src=x onerror=alert(7)&gt;</td>" in rendered and "<svg" not in rendered
    assert "Agreed [here](javascript:alert(8)) &amp; in writing." in rendered  # a field is text


def test_package_refuses_a_rejected_dataset(good, tmp_path, capsys):
    out = tmp_path / "hf"
    assert main(["contribute", "package", str(good), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "too_few_hours" in captured.out and "not packaged" in captured.err
    assert not out.exists()


def test_package_shards_and_size_categories(good):
    from data_tools.contribute.package import shards, size_category
    from data_tools.contribute.records import Measured

    files = sorted((good / "audio" / "train").rglob("*.wav"))
    items = [Measured(Clip(str(f), f, "train", "s", "t")) for f in files]
    size = files[0].stat().st_size
    groups = shards(items, limit=int(2.5 * size))
    assert [m for g in groups for m in g] == items  # order kept, nothing lost
    assert all(sum(m.clip.path.stat().st_size for m in g) <= 2.5 * size for g in groups)
    assert len(shards(items, limit=1)) == len(items)  # one oversized file still gets a shard

    assert [size_category(n) for n in (0, 999, 1000, 20_000)] == \
        ["n<1K", "n<1K", "1K<n<10K", "10K<n<100K"]


def test_alignment_check_where_mfa_exists_flags_mismatched_transcripts(good, monkeypatch):
    from data_tools.stages import align
    from data_tools.speech import mfa

    def fake_align(utts, work, cfg):  # stands in for MFA: clip c0 of s1 aligned to wrong words
        words = {u.id: [mfa.Word(0.1 * i, 0.1 * i + 0.1, w)
                        for i, w in enumerate(mfa.words_of(u.text))] for u in utts}
        words["train/s1/c0"] = [mfa.Word(0.0, 0.5, "something"), mfa.Word(0.5, 1.0, "else")]
        return words

    monkeypatch.setattr(mfa, "find_mfa", lambda command="mfa": "/usr/bin/mfa")
    monkeypatch.setattr(align, "align_corpus", fake_align)
    result = validate(good, ContributeConfig(**CFG))
    assert [(p.reason, p.detail.split(":")[0]) for p in result.problems] == \
        [("poor_alignment", "audio/train/s1/c0")]
    assert result.accepted and {c.name: c.status for c in result.checks}["alignment"] == "passed"
    result = validate(good, ContributeConfig(**CFG, max_bad_clip_fraction=0.05))
    assert not result.accepted and "too_many_misaligned" in reasons(result)


def test_the_card_example_in_the_docs_has_no_problems(tmp_path):
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "contributing-datasets.md"
    example = docs.read_text().split("```yaml\n")[1].split("```")[0]
    (tmp_path / "README.md").write_text(example)
    parsed, problems = read_card(tmp_path)
    assert problems == [] and [s.id for s in parsed.speakers] == ["anna", "bernd", "carla"]
