"""The contribution gate bounds what one file may cost and names everything it does not read:
a 3-hour WAV is rejected from its header while the rest of the report is made, a card that
links outside the folder is refused unread, stray files and linked or unreadable folders are
listed with a reason, and hidden characters in names are flagged and shown escaped."""
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import kani_adapt.audio
from data_tools.cli import main
from data_tools.contribute.card import read_card
from data_tools.contribute.config import ContributeConfig
from data_tools.contribute.validate import validate
import test_contribute
from test_contribute import CFG, card, reasons

good = test_contribute.good  # the shared fixture: a contribution of three speakers
THREE_HOURS = 3 * 3600


def sparse_wav(path: Path, seconds: float, rate: int = 22050) -> Path:
    """A valid 16-bit mono WAV of ``seconds`` of silence, written as a sparse file: the header
    declares every sample, the disk holds almost none and nothing is held in memory."""
    data = int(seconds * rate) * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    head = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + fmt + b"data" + \
        struct.pack("<I", data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + data)
    return path


@pytest.fixture
def copy(good, tmp_path):
    root = tmp_path / "contrib"
    shutil.copytree(good, root)
    return root


def _reads(monkeypatch) -> list[tuple[str, float | None]]:
    """Every decode of an audio file as (file name, max_seconds asked for)."""
    calls, real = [], kani_adapt.audio.read

    def read(path, *args, **kwargs):
        calls.append((Path(path).name, kwargs.get("max_seconds")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(kani_adapt.audio, "read", read)
    return calls


def test_a_three_hour_wav_is_rejected_from_its_header_while_the_rest_is_reported(
        copy, monkeypatch, capsys):
    long = sparse_wav(copy / "audio/train/s1/long.wav", THREE_HOURS)
    long.with_suffix(".txt").write_text("a very long reading")
    assert sf.info(long).duration == THREE_HOURS  # a real WAV any reader accepts
    reads = _reads(monkeypatch)
    cfg = ContributeConfig(**CFG)
    result = validate(copy, cfg)

    found = reasons(result)
    assert found["clip_too_long"] == ["audio/train/s1/long: 10800 s > max_clip_seconds=300; a "
                                      "clip is one utterance: cut the recording into clips"]
    assert result.stats["readable_clips"] == 12  # every other clip was measured
    assert abs(result.stats["hours"] - sum(result.stats["hours_per_split"].values())) < 1e-3
    assert not any(name == "long.wav" for name, _ in reads), "the long file was never decoded"
    assert all(limit is not None and limit <= cfg.max_clip_seconds + 1 for _, limit in reads)
    assert main(["contribute", "validate", str(copy), "--min-hours", "0.002", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "`clip_too_long`" in out and "## Statistics" in out and "| s2 |" in out


def test_size_channels_and_a_length_missing_from_the_header_are_bounded_too(
        copy, monkeypatch):
    rate = 48000
    many = np.random.default_rng(0).standard_normal((2 * rate, 8)).astype(np.float32) * 0.1
    sf.write(copy / "audio/train/s1/octo.wav", many, rate)  # 8 channels, 2 s: 1.5 MB of
    (copy / "audio/train/s1/octo.txt").write_text("eight channels")  # PCM_16, 2.9 MB decoded
    cfg = ContributeConfig(**CFG, max_decoded_mb=1.0, max_clip_mb=0.5)
    found = reasons(validate(copy, cfg))
    assert found["file_too_large"] == ["audio/train/s1/octo: 1.5 MB > max_clip_mb=0.5; "
                                       "re-export it as 16-bit WAV or FLAC"]
    cfg.max_clip_mb = 10.0
    found = reasons(validate(copy, cfg))
    assert found["decode_too_large"] == ["audio/train/s1/octo: 8 channels at 48000 Hz for 2 s "
                                         "decode to 2.9 MB > max_decoded_mb=1; export it as "
                                         "mono or stereo"]  # the mono clips pass

    # a container that does not say how long it is: decoding stops at the bound
    from kani_adapt.audio import Probe

    real = kani_adapt.audio.probe
    monkeypatch.setattr(kani_adapt.audio, "probe", lambda path: Probe(
        0.0, real(path).sample_rate, "ffmpeg") if Path(path).name == "c0.wav" else real(path))
    reads = _reads(monkeypatch)
    found = reasons(validate(copy, ContributeConfig(**CFG, max_clip_seconds=1.0)))
    assert [d for d in found["clip_too_long"] if "/s2/c0" in d] == [
        "audio/train/s2/c0: decoding passed max_clip_seconds=1 though the header said less; "
        "cut it into clips of one utterance"]
    assert max(limit for name, limit in reads if name == "c0.wav") == 2.0


def test_a_card_that_links_outside_the_folder_is_refused_unread(copy, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text(card({"s1": 4, "s2": 4, "s3": 4}, pretty_name="OUTSIDE-SECRET"))
    (copy / "README.md").unlink()
    (copy / "README.md").symlink_to(outside)
    result = validate(copy, ContributeConfig(**CFG))
    found = reasons(result)
    assert found["card_outside_dataset_folder"] == [
        f"{copy / 'README.md'}: not read: copy the file into the dataset instead of linking it"]
    assert not result.accepted
    assert "OUTSIDE-SECRET" not in json.dumps([p.detail for p in result.problems])
    # a link that stays inside is a file of the dataset
    (copy / "docs").mkdir()
    shutil.copy(outside, copy / "docs" / "card.md")
    (copy / "README.md").unlink()
    (copy / "README.md").symlink_to(copy / "docs" / "card.md")
    parsed, problems = read_card(copy)
    assert problems == [] and parsed.pretty_name == "OUTSIDE-SECRET"


class _Planted:
    """Unpickling this leaves a marker file: proof that a stray pickle was never loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def test_stray_files_and_linked_or_unreadable_folders_are_listed_with_a_reason(
        copy, tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    (copy / "audio/train/s1/model.pkl").write_bytes(pickle.dumps(_Planted(str(marker))))
    (copy / "audio/train/s2/data.parquet").write_bytes(b"PAR1")
    (copy / "extra.pickle").write_bytes(b"\x80\x04N.")
    (copy / "notes").mkdir()
    outside = tmp_path / "outside" / "s4"
    shutil.copytree(copy / "audio/train/s2", outside)
    (copy / "audio/train/s4").symlink_to(outside)  # a speaker folder linked from elsewhere
    (copy / "audio/train/s5").symlink_to(copy / "audio/train/s2")  # and one linked inside
    locked = copy / "audio/validation/s6"
    shutil.copytree(copy / "audio/train/s2", locked)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads it anyway: the folder fails as it would
        real = os.scandir

        def scandir(path):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied")
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        result = validate(copy, ContributeConfig(**CFG))
    finally:
        locked.chmod(0o755)
    found = reasons(result)
    strays = sorted(d.split(":")[0] for d in found["stray_file"])
    assert strays == ["audio/train/s1/model.pkl", "audio/train/s2/data.parquet",
                      "extra.pickle", "notes"]
    assert "a .pkl file that is no part of a contribution" in str(found["stray_file"])
    assert sorted(d.split(":")[0] for d in found["linked_folder"]) == \
        ["audio/train/s4/", "audio/train/s5/"]
    assert found["unreadable_folder"] == ["audio/validation/s6/: Permission denied; its files "
                                          "were not checked: make it readable"]
    assert not marker.exists() and not result.accepted
    assert {c.speaker for c in [m.clip for m in result.measured]} == {"s1", "s2", "s3"}
    status = {c.name: c.status for c in result.checks}
    assert status["layout"] == "failed"


def test_hidden_characters_in_speaker_names_are_flagged_and_shown_escaped(copy, capsys):
    name = "ann\u202egro"  # shown as "annorg" by a terminal that honours the override
    (copy / "audio/train" / name).mkdir()
    for ext in ("wav", "txt"):
        shutil.copy(copy / f"audio/train/s2/c1.{ext}", copy / "audio/train" / name / f"x.{ext}")
    result = validate(copy, ContributeConfig(**CFG))
    found = reasons(result)
    assert found["hidden_characters"] == [
        "audio/train/ann\\u202egro/: the name holds \\u202e, which changes how text around it "
        "is shown; rename it with letters, digits, '-' and '_'"]
    assert not result.accepted
    assert main(["contribute", "validate", str(copy), "--min-hours", "0.002", "--quiet"]) == 1
    out = capsys.readouterr().out
    # the speaker table too, its backslash escaped for Markdown (rendered: ann\u202egro)
    assert "\u202e" not in out and "| ann\\\\u202egro |" in out
