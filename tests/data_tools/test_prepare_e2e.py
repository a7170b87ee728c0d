"""A small synthetic corpus (espeak-ng voices as speakers, planted bad files) through
`data-tools prepare`, into the dataset the generator's training data reads."""
import json

import numpy as np

from tests.helpers import REQUIRED, substitute_codec, tiny_embedder_folder
from data_tools.cli import main
from data_tools.records import read_jsonl
from dt_helpers import SENTENCES, EnergyCodec, espeak, good_clip, needs_espeak, write
from kani_adapt import tokens
from kani_adapt.models.generator.tokenizer import (
    add_kani_tokens, build_offline_text_tokenizer, encode_text,
)

VOICES = {"anna": "en", "ben": "en-us", "cara": "en+f3"}


def build_corpus(root):
    for k, (speaker, voice) in enumerate(VOICES.items()):
        for i in range(2):
            good_clip(root / speaker / f"{speaker}{i}.wav", k + i, voice=voice)
    (root / "ben" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (root / "ben" / "broken.txt").write_text("broken file")
    (root / "anna" / "anna0_copy.wav").write_bytes((root / "anna" / "anna0.wav").read_bytes())
    (root / "anna" / "anna0_copy.txt").write_text(SENTENCES[0])
    speech, sr = espeak(SENTENCES[3], voice="en")
    import soxr
    write(root / "cara" / "phone.wav", soxr.resample(speech, sr, 8000), 8000, SENTENCES[3])
    write(root / "cara" / "quiet.wav", np.zeros(sr * 2, np.float32), sr, "silence only")
    (root / "cara" / "orphan.wav").write_bytes((root / "cara" / "cara0.wav").read_bytes()[:-10])
    return {"broken": "unreadable_audio", "anna0_copy": "duplicate", "phone": "low_sample_rate",
            "quiet": "no_speech", "orphan": "missing_transcript"}


@needs_espeak
def test_prepare_turns_recordings_into_the_dataset_and_resumes(tmp_path, monkeypatch, capsys):
    expected = build_corpus(tmp_path / "recordings")
    tiny_embedder_folder(tmp_path / "embedder")
    tok = build_offline_text_tokenizer()
    add_kani_tokens(tok)
    tok.save_pretrained(tmp_path / "tokenizer")
    codec = EnergyCodec()
    substitute_codec(monkeypatch, codec)
    config = tmp_path / "data.yaml"
    config.write_text(
        "work: work\nmax_rejected_fraction: 0.6\n"
        "ingest:\n  sources:\n    - path: recordings\n      name: synth\n      tag: EN_test\n"
        "align:\n  enabled: off\ntranscribe:\n  enabled: off\n"  # the orphan stays rejected
        "filter:\n  tokenizer: tokenizer\n"
        f"embed:\n  model: {tmp_path / 'embedder'}\n  batch_size: 4\n"
        "tokenize:\n  codec: test-energy\n  batch_seconds: 12\n")
    assert main(["prepare", str(config)]) == 0
    out = tmp_path / "work" / "dataset"

    rejected = {r["id"].rsplit("/", 1)[1]: r["reason"]
                for r in read_jsonl(tmp_path / "work" / "rejected.jsonl")}
    assert rejected == expected
    from datasets import load_from_disk
    ds = load_from_disk(str(out / "hf"))
    assert sorted(ds["speaker"]) == sorted(s for s in VOICES for _ in range(2))
    assert set(ds["tag"]) == {"en_test"}
    for row in ds:
        assert row["source"].startswith("synth/") and row["text"] in SENTENCES
        codes = np.stack([row[f"nano_layer_{c}"] for c in range(1, 5)], axis=1)
        assert codes.shape == (row["encoded_len"], 4)
        # repeated frames are dropped by default, so the frames cover at most the duration
        assert row["encoded_len"] / tokens.FRAMES_PER_SECOND < row["duration"] + 0.1
        example = tokens.build_example(encode_text(tok, row["text"], row["tag"]), codes)
        np.testing.assert_array_equal(tokens.parse_codes(example.input_ids), codes)  # round trip
    # The generator training data module reads both the saved dataset and the parquet files.
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.data import GeneratorData

    for folder in ("hf", "parquet"):
        cfg = load_config(TrainConfig, None, [*REQUIRED, f"data.train={out / folder}",
                                              "data.val_speakers=1", "trainer.max_steps=2"])
        data = GeneratorData(cfg, tok)
        data.setup()
        assert len(data.train_set) == 4 and len(data.val_set) == 2
        batch = next(iter(data.train_dataloader()))
        assert batch["speaker_emb"].shape[1] == 128
        assert (batch["input_ids"][:, 0] == tokens.START_OF_HUMAN).all()
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["alignment"] == "off" and report["coverage"]["characters"] > 0
    assert {r["reason"] for r in report["rejected_by_reason"]} == set(expected.values())
    encoded = sum(b for b, _ in codec.calls)
    assert encoded == len(ds)
    _check_report_page(out, expected)

    # A second run finds everything done: nothing is encoded again, the dataset is the same.
    assert main(["prepare", str(config)]) == 0
    assert sum(b for b, _ in codec.calls) == encoded
    again = load_from_disk(str(out / "hf"))
    assert again["nano_layer_1"] == ds["nano_layer_1"] and again["source"] == ds["source"]
    assert "dataset written to" in capsys.readouterr().out


@needs_espeak
def test_stages_run_one_by_one_with_tokenize_shards(tmp_path, monkeypatch, capsys):
    for i, speaker in ((0, "anna"), (1, "ben"), (3, "ben")):  # ids hash to shards 0, 0 and 1
        good_clip(tmp_path / "recordings" / speaker / f"c{i}.wav", i)
    tiny_embedder_folder(tmp_path / "embedder")
    codec = EnergyCodec()
    substitute_codec(monkeypatch, codec)
    config = tmp_path / "data.yaml"
    config.write_text("work: work\ningest:\n  sources:\n    - path: recordings\n"
                      "embed:\n  model: embedder\n")
    for argv in (["ingest"], ["segment"], ["filter"], ["embed"], ["tokenize", "--shard", "0/2"]):
        assert main([argv[0], str(config), *argv[1:]]) == 0
    assert main(["write", str(config)]) == 2  # shard 1/2 is missing: refuse a partial dataset
    assert "lack codes" in capsys.readouterr().err
    assert main(["tokenize", str(config), "--shard", "1/2"]) == 0
    assert main(["write", str(config)]) == 0
    from datasets import load_from_disk
    ds = load_from_disk(str(tmp_path / "work" / "dataset" / "hf"))
    assert sorted(ds["source"]) == ["recordings/anna/c0", "recordings/ben/c1", "recordings/ben/c3"]
    assert sum(b for b, _ in codec.calls) == 3
    assert len(list((tmp_path / "work" / "tokenize").glob("codes-00001-of-00002-*.npz"))) == 1


def _check_report_page(out, expected):
    """report.html: the report's tables, then players for kept clips of every speaker and a
    sample of every rejection reason; every player's file is in the dataset folder."""
    import re
    from urllib.parse import unquote

    import soundfile as sf

    page = (out / "report.html").read_text()
    assert "Hours per speaker" in page and all(reason in page for reason in expected.values())
    sources = [unquote(s) for s in re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page)]
    kept = [s for s in sources if "/kept_" in s]
    assert len(kept) == 6 and all(sf.info(str(out / s)).frames > 0 for s in sources)
    # rejected clips that were cut before their rejection get a player (silence, low sample rate)
    assert len(sources) > len(kept)
