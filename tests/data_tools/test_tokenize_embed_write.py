import json

import numpy as np
import pytest
import soundfile as sf
import torch

from data_tools.stages import embed, tokenize
from data_tools import runner
from kani_adapt.models.speaker import embedder as speaker_embedder
from kani_adapt.batching import id_batches
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.embed import EmbedConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.stages.tokenize import TokenizeConfig
from data_tools.stages.write import WriteConfig
from data_tools.records import read_stage_results
from dt_helpers import EnergyCodec, good_clip, needs_espeak, run_stage
from kani_adapt.codec.protocol import Codec
from kani_adapt.core.errors import DataError
from tests.helpers import substitute_codec


def test_batches_cover_every_id_once_within_budget():
    rng = np.random.default_rng(0)
    lengths = {f"u{i}": int(x) for i, x in enumerate(rng.integers(1000, 50000, 40))}
    batches = id_batches(lengths, max_padded=120000, max_size=8)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == sorted(lengths) and len(flat) == len(set(flat))
    for b in batches:
        assert len(b) <= 8
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 120000
    # neighbours in length: padding in bucketed batches is far below a random grouping's
    pad = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)
    ids = list(lengths)
    rand = [ids[i:i + 4] for i in range(0, 40, 4)]
    pad_rand = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in rand)
    assert pad < pad_rand / 3


def test_shards_partition_ids_and_names_cannot_collide():
    ids = [f"src/spk/{i}" for i in range(200)]
    shards = [runner.shard_of(i, 4) for i in ids]
    assert set(shards) == {0, 1, 2, 3}
    assert tokenize.batch_file((0, 4), ids[:3]) != tokenize.batch_file((0, 4), ids[3:6])
    assert tokenize.batch_file((0, 4), ids[:3]) != tokenize.batch_file((1, 4), ids[:3])
    assert runner.parse_shard("2/4") == (2, 4)
    from kani_adapt.core.errors import ConfigError
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ConfigError):
            runner.parse_shard(bad)


def test_test_codec_follows_the_protocol_and_batching_does_not_change_codes():
    codec = EnergyCodec()
    assert isinstance(codec, Codec)
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (5000, 17640, 9000)]
    together = tokenize.encode_batch(codec, clips)
    alone = [tokenize.encode_batch(codec, [c])[0] for c in clips]
    for a, b, clip in zip(together, alone, clips):
        assert a.shape == (4, -(-len(clip) // 1764))
        np.testing.assert_array_equal(a, b)


def test_speaker_means_are_unit_vectors_per_speaker():
    rng = np.random.default_rng(0)
    embs = {f"{s}{i}": rng.standard_normal(128) for s in "ab" for i in range(3)}
    embs = {k: v / np.linalg.norm(v) for k, v in embs.items()}
    means = embed.speaker_means(embs, {k: k[0] for k in embs})
    assert set(means) == {"a", "b"} and means["a"]["clips"] == 3
    assert abs(np.linalg.norm(means["a"]["mean"]) - 1) < 1e-5
    assert -1 <= means["a"]["min_cosine"] < 1


@needs_espeak
def test_tokenize_in_shards_then_write_the_dataset(tmp_path, monkeypatch):
    root, work = tmp_path / "in", tmp_path / "work"
    for i, spk in enumerate(["ann", "ann", "bob", "bob", "bob"]):
        good_clip(root / spk / f"c{i}.wav", i, voice="en" if spk == "ann" else "en-us")
    utts = run_stage("ingest", work,
                     ingest=IngestConfig(sources=[SourceConfig(path=str(root), tag="EN")]))
    run_stage("embed", work, utts, embed=EmbedConfig(batch_size=2),
              given={"embedder": speaker_embedder.load(speaker_embedder.TINY)})
    codec = EnergyCodec()
    substitute_codec(monkeypatch, codec)
    cfg = TokenizeConfig(batch_seconds=8.0)
    tok = dict(budget=1.0, tokenize=cfg)
    assert run_stage("tokenize", work, utts, shard=(0, 2), **tok) == []  # shard 1 still owes
    with pytest.raises(DataError, match="lack codes"):  # shard 1 of 2 has not run yet
        run_stage("write", work, utts)
    first_calls = len(codec.calls)
    run_stage("tokenize", work, utts, shard=(1, 2), **tok)
    run_stage("tokenize", work, utts, shard=(1, 2), **tok)  # resumed: no-op
    files = sorted(p.name for p in (work / "tokenize").glob("codes-*.npz"))
    assert len(files) == len(set(files)) >= 2 and len(codec.calls) >= first_calls
    assert sum(b for b, _ in codec.calls) == len(utts)  # every clip encoded exactly once
    out = run_stage("write", work, utts, write=WriteConfig())

    from datasets import load_from_disk, load_dataset
    ds = load_from_disk(str(out / "hf"))
    pq = load_dataset("parquet", data_files=str(out / "parquet" / "*.parquet"))["train"]
    assert len(ds) == len(pq) == 5
    row = ds[0]
    assert row["tag"] == "en" and not row["text"].startswith("en:")
    assert row["encoded_len"] == len(row["nano_layer_1"]) == len(row["nano_layer_4"]) > 0
    assert len(row["speaker_emb"]) == len(row["speaker_emb_mean"]) == 128
    by_speaker = {}
    for r in ds:
        by_speaker.setdefault(r["speaker"], set()).add(tuple(np.round(r["speaker_emb_mean"], 5)))
    assert {k: len(v) for k, v in by_speaker.items()} == {"ann": 1, "bob": 1}
    manifest = [json.loads(x) for x in (out / "nemo_manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 5 and all(m["audio_filepath"].endswith(".wav") for m in manifest)
    report = json.loads((out / "report.json").read_text())
    assert set(report["hours_per_speaker"]) == {"ann", "bob"}
    assert report["speakers_per_tag"] == {"en": 2}
    assert "Hours per speaker" in (out / "report.md").read_text()
    official = load_dataset("parquet", data_dir=str(out / "official" / "en"), split="train")
    assert len(official) == 5
    assert "language_tag: en" in (out / "official" / "dataset_config.yaml").read_text()


@needs_espeak
def test_tokenize_interrupted_after_writing_a_batch_loses_and_duplicates_nothing(tmp_path,
                                                                                 monkeypatch):
    from data_tools.records import StageLog

    root, work = tmp_path / "in", tmp_path / "work"
    for i in range(4):
        good_clip(root / "s" / f"c{i}.wav", i)
    utts = run_stage("ingest", work, ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    cfg = TokenizeConfig(batch_seconds=7.0, max_batch_size=2)
    real_append, calls = StageLog.append, []

    def crash_on_second(self, entry):
        calls.append(entry)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the batch file and its record
        real_append(self, entry)
    monkeypatch.setattr(StageLog, "append", crash_on_second)
    substitute_codec(monkeypatch, EnergyCodec())
    with pytest.raises(KeyboardInterrupt):
        run_stage("tokenize", work, utts, tokenize=cfg)
    monkeypatch.setattr(StageLog, "append", real_append)
    done_before = set(read_stage_results(work, "tokenize"))
    assert 0 < len(done_before) < 4
    codec = EnergyCodec()
    substitute_codec(monkeypatch, codec)
    kept = run_stage("tokenize", work, utts, tokenize=cfg)
    assert sum(b for b, _ in codec.calls) == 4 - len(done_before)  # finished work is skipped
    codes = tokenize.load_codes(work)
    assert sorted(codes) == sorted(u.id for u in utts) == sorted(u.id for u in kept)
    fresh = tokenize.encode_batch(EnergyCodec(), [
        sf.read(work / u.audio, dtype="float32")[0] for u in utts])
    for u, c in zip(utts, fresh):
        np.testing.assert_array_equal(codes[u.id], c)


def test_default_codec_factory_gives_the_nanocodec():
    import torch

    from kani_adapt.codec.registry import load_codec

    codec = load_codec("tiny")
    audio = torch.sin(torch.arange(22050) / 22050 * 2 * torch.pi * 220)[None]
    codes, frames = codec.encode(audio, torch.tensor([22050]))
    assert codes.shape == (1, 4, int(frames[0])) and int(frames[0]) == 13
    assert int(codes.min()) >= 0 and int(codes.max()) < 4032


class CollapsingCodec(EnergyCodec):
    """A codec that gives every frame the same codes, as a broken or collapsed codec does."""

    def encode(self, audio, lengths):
        codes, frames = super().encode(audio, lengths)
        return torch.full_like(codes, 7), frames


def _prepared(tmp_path, monkeypatch, codec):
    root, work = tmp_path / "in", tmp_path / "work"
    for i, spk in enumerate(["ann", "ann", "bob"]):
        good_clip(root / spk / f"c{i}.wav", i, voice="en" if spk == "ann" else "en-us")
    utts = run_stage("ingest", work,
                     ingest=IngestConfig(sources=[SourceConfig(path=str(root), tag="EN")]))
    run_stage("embed", work, utts, given={"embedder": speaker_embedder.load(speaker_embedder.TINY)})
    if codec is not None:
        substitute_codec(monkeypatch, codec)
    run_stage("tokenize", work, utts, tokenize=TokenizeConfig(codec="tiny", device="cpu"))
    out = run_stage("write", work, utts, write=WriteConfig())
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


@needs_espeak
def test_the_report_gives_frames_per_second_after_repeat_dropping(tmp_path, monkeypatch):
    report, md = _prepared(tmp_path, monkeypatch, None)  # the tiny NanoCodec
    fps = report["frames_per_second"]
    assert 11.0 <= fps["overall"] <= 12.6 and set(fps["per_speaker"]) == {"ann", "bob"}
    assert fps["low"] == [] and "Warning" not in md and "frames/s" in md


@needs_espeak
def test_a_codec_that_collapses_codes_is_flagged_in_the_report(tmp_path, monkeypatch, caplog):
    report, md = _prepared(tmp_path, monkeypatch, CollapsingCodec())
    fps = report["frames_per_second"]
    assert fps["overall"] < 1 and fps["low"] == ["speaker:ann", "speaker:bob", "tag:en"]
    assert md.count("**Warning:**") == 3 and "broken or collapsing codec" in md
    assert "keeps only" in caplog.text
