"""Hostile inputs: ids that try to become paths, concurrent writers, giant transcripts, symlink
tricks, out-of-range settings. Nothing may be written outside the work folder, nothing lost,
every refused item gets a reason, every refused run a one-line error."""
import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

from data_tools.inputs import ids
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.records import read_jsonl
from dt_helpers import needs_espeak, run_stage
from tests.helpers import substitute_codec

RATE = 22050


def tone(path, seconds=1.5, text=None):
    """A short clip (content does not matter to ingest) and, optionally, its transcript."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, format=fmt)
    if text is not None:
        path.with_suffix(".txt").write_text(text)
    return path


def snapshot(root, skip=None):
    """{relative path: sha256} of every file under ``root`` (except the ``skip`` folder)."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        if skip is not None and os.path.abspath(dirpath) == os.path.abspath(skip):
            dirnames[:] = []
            continue
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def reasons(work):
    return {r["source"]: r["reason"] for r in read_jsonl(work / "rejected.jsonl")}


def assert_inside_work(work, utts):
    paths = [(work / u.audio).resolve() for u in utts]
    assert all(p.is_relative_to((work / "ingest" / "audio").resolve()) for p in paths)
    assert len({u.id for u in utts}) == len(utts) and len(set(paths)) == len(paths)


def test_ids_are_safe_file_names_and_cuts_never_take_an_input_id():
    for raw in ("../../etc/passwd", "/abs/x.wav", "a/./b.wav", "..", "wavs/..", "a#seg000.wav",
                "x\\..\\y.wav", "spk/ä b.wav"):
        made = ids.make_id("src", raw)
        assert ids.clip_path("/w", "ingest", made).resolve().is_relative_to("/w/ingest/audio")
        assert "#" not in made and ".." not in made.split("/")
    assert ids.make_id("src", "x y.wav") != ids.make_id("src", "x_y.wav")
    assert ids.make_id("src", "spk/x.flac") == "src/spk/x"  # plain names stay readable
    assert ids.child("src/a", "seg", 0) != ids.make_id("src", "a/seg000")
    assert ids.child("src/a", "seg", 0) != ids.make_id("src", "a#seg000")
    for bad in ("", "/", "//"):
        with pytest.raises(ValueError):
            ids.make_id("src", bad)
    for unsafe in ("src/../x", "/abs", "src/a/..", "a b"):
        with pytest.raises(Exception, match="not a safe file name"):
            ids.clip_path("/w", "ingest", unsafe)


def test_table_ids_with_traversal_absolute_empty_and_colliding_names(tmp_path):
    lj, cv, work = tmp_path / "lj", tmp_path / "cv", tmp_path / "work"
    tone(lj / "wavs" / "LJ1.wav")
    tone(lj / "wavs" / "a b.wav")
    tone(lj / "wavs" / "a_b.wav")
    tone(tmp_path / "escape.wav")
    tone(tmp_path / "abs.wav")
    (lj / "metadata.csv").write_text("\n".join([
        "LJ1|one|one",
        "../wavs/LJ1|back inside|back inside",  # resolves inside: read, written under work
        "../../escape|out|out",  # resolves outside the input folder
        "../../../../../lj/wavs/LJ1|over|over",  # wrote over the input recording before
        f"{tmp_path / 'abs'}|absolute|absolute",
        "|empty id|empty id",
        "LJ1|the same id again|again",
        "a b|space|space",
        "a_b|underscore|underscore",
    ]) + "\n")
    tone(cv / "clips" / "c1.wav")
    (cv / "validated.tsv").write_text(
        "client_id\tpath\tsentence\n"
        "u1\tc1.wav\thallo\n"
        "u1\t../clips/c1.wav\tinside again\n"
        "u2\t../../escape.wav\traus\n"
        f"u3\t{tmp_path / 'abs.wav'}\tabsolut\n"
        "u4\t\tleer\n"
        "u5\tc1.wav\tdoppelt\n")
    before = snapshot(tmp_path, skip=work)
    cfg = IngestConfig(sources=[SourceConfig(path=str(lj), layout="ljspeech"),
                                SourceConfig(path=str(cv), layout="commonvoice")])
    kept = run_stage("ingest", work, budget=1.0, ingest=cfg)

    assert snapshot(tmp_path, skip=work) == before  # no input touched, nothing written outside
    assert_inside_work(work, kept)
    assert reasons(work) == {
        "metadata.csv:3": "outside_input_folder", "metadata.csv:4": "outside_input_folder",
        "metadata.csv:5": "outside_input_folder", "metadata.csv:6": "empty_id",
        "metadata.csv:7": "duplicate_id",
        "validated.tsv:4": "outside_input_folder", "validated.tsv:5": "outside_input_folder",
        "validated.tsv:6": "empty_id", "validated.tsv:7": "duplicate_id"}
    assert sorted(u.text for u in kept) == sorted(
        ["one", "back inside", "space", "underscore", "hallo", "inside again"])


def test_folder_ids_that_sanitise_alike_or_repeat_stay_apart_or_are_rejected(tmp_path):
    root, work = tmp_path / "in", tmp_path / "work"
    tone(root / "s" / "a.flac")
    tone(root / "s" / "a.wav", text="a")  # the same id as a.flac: rejected with a record
    tone(root / "s" / "x y.wav", text="space")
    tone(root / "s" / "x_y.wav", text="underscore")
    tone(root / "s" / "x#seg000.wav", text="looks like a cut")
    tone(root / "..s" / "..wav", text="dots")
    before = snapshot(root)
    kept = run_stage("ingest", work, budget=1.0,
                     ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    assert snapshot(root) == before
    assert_inside_work(work, kept)
    assert sorted(u.text for u in kept) == ["a", "dots", "looks like a cut", "space",
                                            "underscore"]
    assert [u.source for u in kept if u.text == "a"] == [str(root / "s" / "a.flac")]
    assert reasons(work) == {"s/a.wav": "duplicate_id"}


def test_a_work_folder_inside_an_input_folder_is_refused(tmp_path):
    from kani_adapt.core.errors import ConfigError

    root = tmp_path / "in"
    tone(root / "s" / "a.wav", text="x")
    cfg = IngestConfig(sources=[SourceConfig(path=str(root))])
    before = snapshot(tmp_path)
    for work in (root / "work", tmp_path):
        with pytest.raises(ConfigError, match="overlap"):
            run_stage("ingest", work, ingest=cfg)
    assert snapshot(tmp_path) == before and not (root / "work").exists()  # not even a lock


# --- one writer per work folder -------------------------------------------------------------

SLOW_RUN = """
import sys, time
sys.path.insert(0, {helpers!r})
from dt_helpers import EnergyCodec
from kani_adapt.codec import registry
from data_tools.cli import main

class SlowCodec(EnergyCodec):
    def encode(self, audio, lengths):
        open({marker!r}, "a").write("x")  # the other process may now try its luck
        time.sleep({sleep})
        return super().encode(audio, lengths)

registry.CODEC_FACTORY = lambda spec, device: SlowCodec()
sys.exit(main({argv!r}))
"""


def start_slow(tmp_path, argv, sleep=1.0):
    """A real second process running ``data-tools argv`` whose codec calls are slow; returns it
    once it is encoding (so it holds its locks)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    marker = tmp_path / f"encoding-{len(list(tmp_path.glob('encoding-*')))}"
    script = SLOW_RUN.format(helpers=str(Path(__file__).parent), marker=str(marker),
                             sleep=sleep, argv=argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the second process never started encoding"
        time.sleep(0.1)
    return proc


def locking_corpus(tmp_path):
    from tests.helpers import tiny_embedder_folder
    from dt_helpers import good_clip

    for i, speaker in enumerate(["anna", "anna", "ben", "ben"]):
        good_clip(tmp_path / "rec" / speaker / f"c{i}.wav", i)
    tiny_embedder_folder(tmp_path / "embedder")
    config = tmp_path / "data.yaml"
    config.write_text("work: work\ningest:\n  sources:\n    - path: rec\n"
                      "align:\n  enabled: off\nembed:\n  model: embedder\n"
                      "tokenize:\n  codec: slow\n  max_batch_size: 1\n")
    return config, [f"rec/{s}/c{i}" for i, s in enumerate(["anna", "anna", "ben", "ben"])]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def dataset_sources(tmp_path):
    from datasets import load_from_disk

    return sorted(load_from_disk(str(tmp_path / "work" / "dataset" / "hf"))["source"])


@pytest.mark.slow
@needs_espeak
def test_two_prepare_runs_on_one_work_folder(tmp_path, capsys, monkeypatch):
    from data_tools.cli import main
    from dt_helpers import EnergyCodec

    config, clips = locking_corpus(tmp_path)
    substitute_codec(monkeypatch, EnergyCodec())  # "slow" names the second process's codec
    first = start_slow(tmp_path, ["prepare", str(config)])
    try:
        assert main(["prepare", str(config)]) == 2  # while the first one holds the folder
        assert f"in use by another data-tools run (pid {first.pid})" in one_line_error(capsys)
        assert main(["tokenize", str(config), "--shard", "1/2"]) == 2  # no shard sneaks in
        one_line_error(capsys)
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert dataset_sources(tmp_path) == clips  # every good clip exactly once

    # Logs that hold every record twice (two writers of an older version) are repaired on
    # read: the rerun neither rejects clips as duplicates of themselves nor writes them twice.
    for log in (tmp_path / "work").glob("*/log*.jsonl"):
        log.write_text(log.read_text() * 2)
    substitute_codec(monkeypatch, EnergyCodec())
    assert main(["prepare", str(config)]) == 0
    assert dataset_sources(tmp_path) == clips
    assert not list(read_jsonl(tmp_path / "work" / "rejected.jsonl"))


@pytest.mark.slow
@needs_espeak
def test_the_same_tokenize_shard_twice(tmp_path, capsys, monkeypatch):
    from data_tools.cli import main
    from dt_helpers import EnergyCodec

    config, clips = locking_corpus(tmp_path)
    substitute_codec(monkeypatch, EnergyCodec())  # "slow" names the second process's codec
    for stage in ("ingest", "segment", "filter", "embed"):
        assert main([stage, str(config)]) == 0
    capsys.readouterr()  # the earlier stages' progress lines
    first = start_slow(tmp_path, ["tokenize", str(config), "--shard", "0/2"])
    try:
        assert main(["tokenize", str(config), "--shard", "0/2"]) == 2
        assert f"tokenize shard 0/2 in {tmp_path / 'work'} is in use by another data-tools run " \
               f"(pid {first.pid})" in one_line_error(capsys)
        assert main(["write", str(config)]) == 2  # the whole folder is not free either
        one_line_error(capsys)
        assert main(["tokenize", str(config), "--shard", "1/2"]) == 0  # another shard: runs
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert main(["tokenize", str(config), "--shard", "0/2"]) == 0  # finished: nothing to redo
    assert main(["write", str(config)]) == 0
    assert dataset_sources(tmp_path) == clips


def test_a_killed_holder_releases_the_work_folder(tmp_path):
    import signal
    import subprocess
    import sys

    from kani_adapt.core import locks
    from kani_adapt.core.errors import DataError

    work = tmp_path / "work"
    code = ("import sys, time; from kani_adapt.core import locks\n"
            f"with locks.hold({str(work)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(DataError, match=f"pid {proc.pid}"):
        with locks.hold(work):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with locks.hold(work):  # the kernel dropped the dead holder's lock
        assert locks.holder(locks.lock_dir(work) / "work.lock") == str(os.getpid())


# --- bounds on every input ------------------------------------------------------------------

def test_a_giant_transcript_is_refused_unread_in_every_layout(tmp_path):
    import tracemalloc

    folder, lj, cv, work = (tmp_path / n for n in ("in", "lj", "cv", "work"))
    giant = "a" * 50_000_000
    tone(folder / "s" / "giant.wav").with_suffix(".txt").write_text(giant)
    tone(folder / "s" / "fine.wav", text="a normal sentence")
    tone(lj / "wavs" / "LJ1.wav")
    tone(lj / "wavs" / "LJ2.wav")
    (lj / "metadata.csv").write_text(f"LJ1|{giant}|{giant}\nLJ2|fine|fine\n")
    tone(cv / "clips" / "c1.wav")
    (cv / "validated.tsv").write_text(f"client_id\tpath\tsentence\nu\tc1.wav\t{giant}\n")
    del giant
    cfg = IngestConfig(sources=[SourceConfig(path=str(folder)), SourceConfig(
        path=str(lj), layout="ljspeech"), SourceConfig(path=str(cv), layout="commonvoice")])
    tracemalloc.start()
    kept = run_stage("ingest", work, budget=1.0, ingest=cfg)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000  # the 50 MB files were never held in memory
    assert sorted(u.text for u in kept) == ["a normal sentence", "fine"]
    assert reasons(work) == {"s/giant.wav": "transcript_too_long",
                             "metadata.csv:1": "transcript_too_long",
                             "validated.tsv:2": "transcript_too_long"}
    assert os.path.getsize(work / "ingest" / "log.jsonl") < 100_000  # not copied into the log


def test_filter_bounds_text_length_and_letters_per_second_absolutely():
    from data_tools.stages import filter as filtering
    from data_tools.stages.filter import FilterConfig
    from data_tools.speech.quality import Features

    def feats(cps):
        return Features(duration=3.0, clipped_fraction=0.0, snr_db=40.0, peak_db=-15.0,
                        silence_ratio=0.2, chars_per_second=cps, fingerprint=[1.0])
    cfg = FilterConfig()
    assert filtering.item_reasons(feats(14.0), 22050, "x" * 40, cfg) == []
    assert [r for r, _ in filtering.item_reasons(feats(14.0), 22050, "x" * 1001, cfg)] == [
        "text_too_long"]
    assert [r for r, _ in filtering.item_reasons(feats(45.0), 22050, "x" * 40, cfg)] == [
        "too_many_chars_per_second"]
    # a speaker whose every clip is too fast is not saved by the relative (per speaker) rule
    assert filtering.rate_outliers({f"a{i}": ("a", 45.0 + i * 0.1) for i in range(6)}, 4.0) == {}


def test_symlinked_speaker_folders_are_followed_inside_and_refused_outside(tmp_path):
    root, outside, work = tmp_path / "in", tmp_path / "outside", tmp_path / "work"
    tone(root / "store" / "anna" / "a0.wav", text="anna speaks")
    tone(outside / "bob" / "b0.wav", text="bob speaks")
    tone(root / "cara" / "c0.wav", text="cara speaks")
    (root / "anna").symlink_to(root / "store" / "anna")  # inside the input folder: followed
    (root / "bob").symlink_to(outside / "bob")  # outside: a record, not silence
    (root / "cara" / "loop.wav").symlink_to(root / "cara" / "loop.wav")  # a file link loop
    (root / "cara" / "ping.wav").symlink_to(root / "cara" / "pong.wav")
    (root / "cara" / "pong.wav").symlink_to(root / "cara" / "ping.wav")
    (root / "cara" / "again").symlink_to(root / "cara")  # a folder that contains itself
    before = snapshot(tmp_path, skip=work)
    cfg = IngestConfig(sources=[SourceConfig(path=str(root))])
    kept = run_stage("ingest", work, budget=1.0, ingest=cfg)
    assert snapshot(tmp_path, skip=work) == before
    by_speaker = {u.speaker: u.text for u in kept}
    # store/anna and its link are one folder: read once, under the first path found
    assert by_speaker == {"anna": "anna speaks", "cara": "cara speaks"} and len(kept) == 2
    assert reasons(work) == {"bob": "outside_input_folder", "cara/loop.wav": "symlink_loop",
                             "cara/ping.wav": "symlink_loop", "cara/pong.wav": "symlink_loop",
                             "cara/again": "symlink_loop"}


def test_out_of_range_settings_are_reported_all_at_once_by_check(tmp_path, capsys):
    from data_tools.cli import main

    path = tmp_path / "data.yaml"
    path.write_text("max_rejected_fraction: .nan\n"
                    "filter:\n  max_chars_per_second: .inf\n")
    assert main(["check", str(path)]) == 2  # NaN and infinity: refused by the loader itself
    err = one_line_error(capsys)
    assert "max_rejected_fraction: nan is not a finite number" in err
    assert "filter.max_chars_per_second: inf is not a finite number" in err
    path.write_text("ingest:\n  sample_rate: 0\n  max_file_seconds: -5\n"
                    "segment:\n  vad_threshold: 7\n"
                    "filter:\n  min_snr_db: -3\n  min_seconds: 30\n"
                    "embed:\n  batch_size: 0\n")
    assert main(["check", str(path)]) == 2
    err = one_line_error(capsys)
    assert err.startswith("error: 5 problems: ")
    for fragment in (f"{path}.ingest.sample_rate: 0 is outside > 0",
                     f"{path}.ingest.max_file_seconds: -5.0 is outside > 0",
                     f"{path}.segment.vad_threshold: 7.0 is outside [0, 1]",
                     f"{path}.filter: min_seconds (30.0) must be below max_seconds (20.0)",
                     f"{path}.embed.batch_size: 0 is outside > 0"):
        assert fragment in err
    assert "min_snr_db" not in err  # a negative dB threshold is a legal choice
    main(["check", str(path), "max_rejected_fraction=0.5", "ingest.sample_rate=16000",
          "ingest.max_file_seconds=60", "segment.vad_threshold=0.5",
          "filter.min_seconds=2", "filter.max_chars_per_second=30", "embed.batch_size=4"])
    assert capsys.readouterr().err == ""  # the loader takes them (the verdict is about models)


# --- threads --------------------------------------------------------------------------------

THREADS_RUN = """
import json, sys
sys.path.insert(0, {helpers!r})
import torch
torch.set_num_threads(3)  # the user's choice, before anything imports silero-vad
from dt_helpers import EnergyCodec, good_clip
from pathlib import Path
from data_tools import prepare
from data_tools.config import load_config
from kani_adapt.codec import registry

seen = {{"embed": [], "tokenize": []}}

class Codec(EnergyCodec):
    def encode(self, audio, lengths):
        seen["tokenize"].append(torch.get_num_threads())
        return super().encode(audio, lengths)

def embedder(batch, lengths):
    seen["embed"].append(torch.get_num_threads())
    return torch.nn.functional.normalize(torch.randn(len(batch), 128), dim=-1)

root = Path({root!r})
for i in range(2):
    good_clip(root / "rec" / "s" / f"c{{i}}.wav", i)
(root / "data.yaml").write_text("work: work\\ningest:\\n  sources:\\n    - path: rec\\n"
                                "align:\\n  enabled: off\\n")
registry.CODEC_FACTORY = lambda spec, device: Codec()
prepare.run(load_config(root / "data.yaml"), embedder=embedder)
print(json.dumps(seen))
"""


@pytest.mark.slow
@needs_espeak
def test_embed_and_tokenize_inside_prepare_keep_the_users_thread_count(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = THREADS_RUN.format(helpers=str(Path(__file__).parent), root=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)  # a fresh process: silero-vad not imported yet
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["embed"] and seen["tokenize"]  # both ran, after segment imported silero-vad
    assert set(seen["embed"]) == set(seen["tokenize"]) == {3}
