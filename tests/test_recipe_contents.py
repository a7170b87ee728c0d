"""Digests of what a recipe stage reads: the bytes decide, read once while they stay put."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kani_adapt.core import atomic
from kani_adapt.eval.kept import human_input, kept_name
from kani_adapt.recipes.contents import CACHE, MISSING, SETTLE_NS, Digests, Read

SECOND = 10**9


def settled() -> int:
    """The clock of a digest taken once a file's times have settled (a tick after writing)."""
    return time.time_ns() + SETTLE_NS + SECOND


def nemo(path: Path, members: dict[str, bytes], mtime: float) -> Path:
    with tarfile.open(path, "w:") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mtime, info.uid = len(data), mtime, int(mtime) % 1000
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_codec_archive_is_known_by_its_members_not_its_headers(tmp_path):
    d = Digests(tmp_path)
    members = {"model_config.yaml": b"rate: 22050\n", "model_weights.ckpt": b"\x00weights"}
    a = d.of(Read(nemo(tmp_path / "a.nemo", members, 1000.0)))
    b = d.of(Read(nemo(tmp_path / "b.nemo", members, 2000.0)))
    assert (tmp_path / "a.nemo").read_bytes() != (tmp_path / "b.nemo").read_bytes() and a == b
    other = d.of(Read(nemo(tmp_path / "c.nemo", {**members, "model_weights.ckpt": b"\x01weights"}, 1000.0)))
    assert other != a
    (tmp_path / "d.nemo").write_bytes(b"not a tar archive")
    assert d.of(Read(tmp_path / "d.nemo")) not in (a, MISSING)


def test_a_folder_is_its_files_by_name_without_locks_temporaries_and_logs(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    d = Digests(tmp_path)
    read = Read(run, leave_out=("tb",))
    first = d.of(read)
    (run / ".locks").mkdir()
    (run / ".locks" / "run.lock").write_text("123\n")
    (run / f".last.ckpt.{os.getpid()}{atomic.MARK}x").write_text("half")
    (run / "tb").mkdir()
    (run / "tb" / "events").write_text("wall times")
    assert d.of(read) == first
    (run / "checkpoints" / "last.ckpt").rename(run / "checkpoints" / "best.ckpt")
    assert d.of(read) != first  # a name is content too
    assert d.of(Read(tmp_path / "nowhere")) == MISSING


def test_a_manifest_is_read_with_its_audio(tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"RIFF one")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0}) + "\n")
    d = Digests(tmp_path)
    with_audio, alone = d.of(Read(manifest, audio=True)), d.of(Read(manifest))
    clip.write_bytes(b"RIFF two")
    assert d.of(Read(manifest, audio=True)) != with_audio and d.of(Read(manifest)) == alone


def test_the_cache_reads_a_file_again_only_when_it_was_written(tmp_path):
    data = tmp_path / "data.arrow"
    data.write_bytes(b"a" * 1000)
    d = Digests(tmp_path, clock=settled)
    first = d.file(data)
    d.save()
    again = Digests(tmp_path)
    assert again.file(data) == first and again.read_files == 0
    stat = data.stat()
    with open(data, "r+b") as f:  # in place: same inode and length, its time set back
        f.write(b"b")
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert again.file(data) != first and again.read_files == 1
    atomic.write_bytes(data, b"a" * 1000)  # the first bytes again, by rename: a new inode
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert again.file(data) == first and again.read_files == 2


def to_the_second(path) -> SimpleNamespace:
    """os.stat on a file system that keeps times to the second (ext3, HFS+)."""
    s = os.stat(path)
    return SimpleNamespace(st_size=s.st_size, st_ino=s.st_ino,
                           st_mtime_ns=s.st_mtime_ns // SECOND * SECOND,
                           st_ctime_ns=s.st_ctime_ns // SECOND * SECOND)


def test_a_rewrite_within_one_tick_of_the_file_systems_clock_is_read_again(tmp_path):
    data = tmp_path / "data.arrow"
    an_hour_ago = time.time_ns() - 3600 * SECOND  # a modification time kept, as cp -p keeps it
    for _ in range(5):  # a rewrite in the second of the read (nearly always the first try)
        data.write_bytes(b"a" * 1000)
        os.utime(data, ns=(an_hour_ago, an_hour_ago))
        d = Digests(tmp_path, stat=to_the_second)
        first = d.file(data)
        before = to_the_second(data)
        with open(data, "r+b") as f:  # in place: same inode and length
            f.write(b"b")
        os.utime(data, ns=(an_hour_ago, an_hour_ago))
        if to_the_second(data) == before:
            break
    else:
        pytest.fail("no rewrite fell within the second of its read")
    assert d.file(data) != first
    d.save()
    assert Digests(tmp_path, stat=to_the_second).file(data) == d.file(data)
    later = Digests(tmp_path, stat=to_the_second, clock=settled)  # a tick after the write
    assert later.file(data) == d.file(data) and later.read_files == 1
    assert later.file(data) == d.file(data) and later.read_files == 1  # trusted from then on


def test_a_damaged_cache_costs_a_read_and_nothing_else(tmp_path):
    (tmp_path / CACHE).write_text("{not json")
    (tmp_path / "f").write_text("x")
    d = Digests(tmp_path)
    assert d.file(tmp_path / "f") and d.read_files == 1
    d.save()
    assert str((tmp_path / "f").absolute()) in json.loads((tmp_path / CACHE).read_text())


def test_what_people_put_into_an_eval_folder_is_found_and_set_aside_under_a_free_name(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "eval.json").write_text("{}")
    (folder / "eval.md").write_text("# Evaluation\n")
    assert human_input(folder) == []
    for name in ("listening.sqlite", "listening.sqlite-wal", "listening.json", "Notes.txt"):
        (folder / name).write_text("by hand")
    assert human_input(folder) == ["Notes.txt", "listening.json", "listening.sqlite",
                                   "listening.sqlite-wal"]
    first = kept_name(folder)
    assert first.name.startswith("eval.kept-") and first.parent == tmp_path
    first.mkdir()
    assert kept_name(folder) == tmp_path / f"{first.name}-2"
