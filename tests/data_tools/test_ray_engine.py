"""The Ray engine on a local Ray cluster (2 CPUs, a small object store): the dataset the local
engine makes, workers killed mid-block and retried without redoing what they had logged, a
killed driver's run continued, and the work-folder lock held across engines."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_tools.cli import main
from data_tools.config import DataConfig, RayConfig, load_config
from data_tools.records import read_jsonl
from data_tools.records import read_stage_results
from data_tools.runner import run_stage
from dt_helpers import SENTENCES, EnergyCodec, espeak, needs_espeak, with_silence, write
from test_prepare_e2e import VOICES, build_corpus as plant_corpus
from kani_adapt.core.errors import DataError
from kani_adapt.models.speaker import embedder as speaker_embedder
from ray_doubles import DyingCodec, DyingVAD, calls
from tests.helpers import substitute_codec

pytestmark = [pytest.mark.slow, needs_espeak]
STAGES = ("ingest", "segment", "filter", "embed", "outliers", "tokenize")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the module, as the engine starts it (2 CPUs, 128 MB object store)."""
    from data_tools.engines import ray as on_ray

    with on_ray.session():
        ray = on_ray.connect(RayConfig(num_cpus=2, object_store_mb=128))
        yield ray.get_runtime_context().gcs_address


def speak(path: Path, i: int, voice: str = "en") -> Path:
    """A short espeak-ng clip; the speed changes with ``i``, so no two are near copies."""
    text = SENTENCES[i % len(SENTENCES)]
    audio, rate = espeak(text, voice=voice, speed=130 + 12 * (i % 8))
    return write(path, with_silence(audio, rate, 0.3, 0.3, seed=i), rate, text)


def build_corpus(root: Path, per_speaker: int = 5) -> dict[str, str]:
    """The end-to-end test's corpus (three voices, planted bad files), ``per_speaker`` clips
    per voice; the rejections expected."""
    expected = plant_corpus(root)
    for k, (speaker, voice) in enumerate(VOICES.items()):
        for i in range(2, per_speaker):
            speak(root / speaker / f"{speaker}{i}.wav", k + i, voice)
    return expected


def data_config(tmp_path: Path, work: str, **extra: str) -> Path:
    path = tmp_path / f"{work}.yaml"
    lines = [f"work: {work}", "max_rejected_fraction: 0.6",
             "ingest:\n  sources:\n    - path: recordings\n      name: synth\n      tag: en_test",
             "align:\n  enabled: off",
             "transcribe:\n  enabled: off",  # the planted untranscribed file stays a rejection
             f"embed:\n  model: {tmp_path / 'embedder'}\n  batch_size: 3",
             "tokenize:\n  codec: test-energy\n  batch_seconds: 8\n  max_batch_size: 3",
             "ray:\n  num_cpus: 2\n  object_store_mb: 128"]
    path.write_text("\n".join(lines) + "\n")
    return path


def rows(work: Path) -> list[dict]:
    from datasets import load_from_disk

    return sorted(load_from_disk(str(work / "dataset" / "hf")).to_list(),
                  key=lambda r: r["source"])


def logged_ids(folder: Path) -> list[str]:
    """Every id recorded in every log line of a stage (an id twice: work done twice)."""
    return [i for log in sorted(folder.glob("log*.jsonl"))
            for line in read_jsonl(log) for i in line["results"]]


def test_ray_makes_the_local_dataset_rows_codes_embeddings_and_rejections(
        tmp_path, monkeypatch, ray_cluster):
    expected = build_corpus(tmp_path / "recordings")
    speaker_embedder.save(speaker_embedder.build(seed=1), tmp_path / "embedder")
    substitute_codec(monkeypatch, EnergyCodec())
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in Ray's one-CPU workers: float sums in the same order
    try:
        assert main(["prepare", str(data_config(tmp_path, "local"))]) == 0
    finally:
        torch.set_num_threads(threads)
    config = data_config(tmp_path, "ray")
    assert main(["prepare", str(config), "--engine", "ray", "ray.workers=2",
                 "ray.block_items=3"]) == 0
    local, ray = tmp_path / "local", tmp_path / "ray"

    got, want = rows(ray), rows(local)
    assert len(want) >= 12  # 15 clips (the copy is anna0's duplicate), outliers aside
    assert [r["source"] for r in got] == [r["source"] for r in want]
    for a, b in zip(got, want):
        assert a == b  # text, codes, encoded_len, speaker_emb(_mean), duration, columns
    rejected = list(read_jsonl(ray / "rejected.jsonl"))
    assert rejected == list(read_jsonl(local / "rejected.jsonl"))
    found = {r["id"].rsplit("/", 1)[1]: r["reason"] for r in rejected}
    assert {k: v for k, v in found.items() if k in expected} == expected  # the planted files
    # besides them, only what is decided over a speaker's clips (a rate or an embedding apart)
    assert set(found.values()) - set(expected.values()) <= {"speaking_rate_outlier",
                                                             "speaker_outlier"}
    for stage in STAGES:  # every stage's manifest and rejections, in input order
        for name in ("manifest.jsonl", "rejected.jsonl"):
            assert (ray / stage / name).read_text() == (local / stage / name).read_text()
        ids = logged_ids(ray / stage)
        assert len(ids) == len(set(ids)) == len(read_stage_results(ray, stage))
        assert not list((ray / stage).glob("log.jsonl")), "the work ran on Ray, in blocks"
    # batches grouped by duration as locally: the same batch files (named by their ids)
    assert sorted(p.name for p in (ray / "tokenize").glob("codes-*.npz")) == \
        sorted(p.name for p in (local / "tokenize").glob("codes-*.npz"))

    summary = json.loads((ray / "dataset" / "report.json").read_text())["throughput"]
    by_stage = {r["stage"]: r for r in summary}
    assert set(by_stage) == set(STAGES)
    assert {r["engine"] for r in summary} == {"ray"}
    assert by_stage["filter"]["workers"] == 2  # two task workers shared the blocks
    assert sum(w["items"] for w in by_stage["segment"]["per_worker"]) == \
        len(read_stage_results(ray, "segment"))
    assert by_stage["embed"]["per_worker"][0]["open_s"] > 0  # the embedder loaded per actor
    report = (ray / "dataset" / "report.md").read_text()
    assert "## Throughput" in report and "| tokenize | ray |" in report
    assert json.loads((local / "dataset" / "report.json").read_text())["throughput"][0][
        "engine"] == "local"


def _ingested(tmp_path: Path, n: int) -> tuple[DataConfig, Path]:
    """A corpus of ``n`` clips and its config (work folder ``one``, the local engine)."""
    for i in range(n):
        speak(tmp_path / "recordings" / ("anna", "ben")[i % 2] / f"c{i:02d}.wav", i)
    config = data_config(tmp_path, "one")
    cfg = load_config(config)
    return cfg, config


def test_a_task_worker_killed_mid_block_is_run_again_without_redoing_its_logged_batches(
        tmp_path, ray_cluster):
    cfg, _ = _ingested(tmp_path, 8)
    run_stage("ingest", cfg)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    local = DyingVAD(tmp_path / "local-vad", at=0)
    (tmp_path / "local-vad").mkdir()
    want = run_stage("segment", cfg, given={"vad": local})

    vad_dir = tmp_path / "ray-vad"
    vad_dir.mkdir()
    cfg.work, cfg.engine, cfg.ray.workers = str(tmp_path / "two"), "ray", 1  # 4 blocks of 2
    got = run_stage("segment", cfg, given={"vad": DyingVAD(vad_dir, at=2)})

    assert DyingVAD(vad_dir, 0).died  # the worker died on the second clip of the first block
    assert [u.to_dict() for u in got.kept] == [u.to_dict() for u in want.kept]
    # 8 clips, plus the one it died on; its block's first clip, logged before, not redone
    assert len(calls(vad_dir)) == 8 + 1 and len(calls(tmp_path / "local-vad")) == 8
    ids = logged_ids(tmp_path / "two" / "segment")
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 8


def test_an_actor_killed_mid_block_is_restarted_and_skips_the_batches_it_logged(
        tmp_path, monkeypatch, ray_cluster):
    cfg, _ = _ingested(tmp_path, 8)
    cfg.tokenize.max_batch_size = 1  # blocks of two batches: it dies inside its first block
    for stage in ("ingest", "segment", "filter"):
        run_stage(stage, cfg)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    (tmp_path / "local-codec").mkdir()
    substitute_codec(monkeypatch, DyingCodec(tmp_path / "local-codec"))
    run_stage("tokenize", cfg)
    batches = len(calls(tmp_path / "local-codec"))

    (tmp_path / "ray-codec").mkdir()
    substitute_codec(monkeypatch, DyingCodec(tmp_path / "ray-codec", at=2))
    cfg.work, cfg.engine, cfg.ray.workers = str(tmp_path / "two"), "ray", 1
    run_stage("tokenize", cfg)

    assert DyingCodec(tmp_path / "ray-codec").died and batches == 8
    # the batch it died in, once more; the one it had logged before, not again
    assert len(calls(tmp_path / "ray-codec")) == batches + 1
    from data_tools.stages.tokenize import load_codes

    got, want = load_codes(tmp_path / "two"), load_codes(tmp_path / "one")
    assert sorted(got) == sorted(want)
    for utt_id, codes in want.items():
        np.testing.assert_array_equal(got[utt_id], codes)
    ids = logged_ids(tmp_path / "two" / "tokenize")
    assert len(ids) == len(set(ids)) == len(want)


DRIVER = """
import sys
sys.path[:0] = {paths!r}
from kani_adapt.codec import registry
from ray_doubles import DyingCodec
codec = DyingCodec({folder!r}, delay=1.5)
registry.CODEC_FACTORY = lambda spec, device: codec
from data_tools.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_driver_is_continued_without_redoing_finished_blocks_and_holds_the_lock(
        tmp_path, monkeypatch, ray_cluster):
    cfg, config = _ingested(tmp_path, 10)
    for stage in ("ingest", "segment", "filter"):
        run_stage(stage, cfg)
    codec_dir = tmp_path / "codec"
    codec_dir.mkdir()
    driver = tmp_path / "driver.py"
    here = Path(__file__).resolve().parent
    driver.write_text(DRIVER.format(paths=[str(here.parents[1]), str(here)],
                                    folder=str(codec_dir)))
    # its own local Ray (no --ray-address): started for the run, killed with its driver
    proc = subprocess.Popen([sys.executable, str(driver), "tokenize", str(config), "--engine",
                             "ray", "ray.workers=2", "tokenize.batch_seconds=4"],
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    folder = tmp_path / "one" / "tokenize"
    try:
        _wait(lambda: (folder / "settings.json").exists(), proc)
        with pytest.raises(DataError, match=rf"in use by another data-tools run \(pid {proc.pid}"):
            run_stage("tokenize", cfg)  # the local engine, while Ray's driver holds the folder
        _wait(lambda: len(logged_ids(folder)) >= 2, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _end_group(proc)
    done = _settled(folder)
    n = len(list(read_jsonl(tmp_path / "one" / "filter" / "manifest.jsonl")))
    assert 2 <= len(done) < n, "killed while blocks were left"
    before = len(calls(codec_dir))

    substitute_codec(monkeypatch, DyingCodec(codec_dir))  # the same codec, in this driver
    assert main(["tokenize", str(config), "--engine", "ray", "--ray-address", ray_cluster,
                 "tokenize.batch_seconds=4"]) == 0
    encoded = sum(int(line.split()[1]) for line in calls(codec_dir)[before:])
    assert encoded == n - len(done)  # only what the killed run had not logged
    ids = logged_ids(folder)
    assert sorted(ids) == sorted(set(ids)) and len(ids) == n  # nothing twice, nothing lost
    assert (folder / "manifest.jsonl").exists()


def _wait(condition, proc, timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the driver ended early: {proc.stdout.read()[-3000:]}")
        if time.monotonic() > end:
            pytest.fail("timed out waiting for the Ray driver")
        time.sleep(0.1)


def _settled(folder: Path, quiet: float = 3.0) -> list[str]:
    """The ids logged once nothing has written for ``quiet`` seconds (the workers are gone)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet:
        now = logged_ids(folder)
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.2)
    return last


def _end_group(proc) -> None:
    """What the killed driver started (its local Ray's processes), ended by its group id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
