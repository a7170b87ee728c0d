"""Datasets for the official pretraining code (kani-tts-2-pretrain), read the way it reads them:
``load_dataset(reponame, name, split=split)`` per entry of dataset_config.yaml, columns renamed
as the entry says, one language tag per entry, repeated frames dropped, long clips filtered."""
import numpy as np
import pytest
import yaml

from data_tools import official_dataset
from data_tools.records import Utterance
from kani_adapt import tokens


def clip_codes(seed, frames=6):
    codes = np.random.default_rng(seed).integers(0, tokens.CODEBOOK_SIZE, (frames, 4))
    codes[2] = codes[1]  # a repeated frame, as silence gives
    return codes.T  # (4, frames), as the tokenize stage stores them


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    utts = [Utterance(f"src/{i}.wav", f"{i}.wav", f"text {i}", spk, tag, duration=0.5)
            for i, (spk, tag) in enumerate([("ann", "en_glasgow"), ("ann", "en_glasgow"),
                                            ("bob", "de"), ("cid", "")])]
    codes = {u.id: clip_codes(i) for i, u in enumerate(utts)}
    rng = np.random.default_rng(9)
    embs = {u.id: rng.standard_normal(128).astype(np.float32) for u in utts}
    means = {s: rng.standard_normal(128).astype(np.float32) for s in ("ann", "bob", "cid")}
    root = tmp_path_factory.mktemp("ds")
    official_dataset.write(root / "tmp", root / "final", utts, codes, embs, means)
    (root / "tmp").rename(root / "final")  # what the write stage does with its whole output
    return root / "final", utts, codes, means


def official_read(entry):
    """The official ItemDataset's loading and renaming, and its text prompt."""
    from datasets import load_dataset

    ds = load_dataset(entry["reponame"], entry["name"], split=entry["split"])
    rename = {entry["text_col_name"]: "text", entry["encoded_len"]: "encoded_len",
              entry["speaker_emb"]: "speaker_emb",
              **{entry[f"nano_layer_{c}"]: f"nano_layer_{c}" for c in range(1, 5)}}
    ds = ds.rename_columns(rename)
    tag = entry.get("language_tag")
    texts = [f"{tag.lower()}: {t}" if tag is not None else t for t in ds["text"]]
    return ds, texts


def test_one_parquet_folder_per_tag_each_loadable_offline(written):
    from datasets import load_dataset

    folder, utts, _, _ = written
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {"en_glasgow", "de", "untagged"}
    sizes = {name: len(load_dataset("parquet", data_dir=str(folder / name), split="train"))
             for name in ("en_glasgow", "de", "untagged")}
    assert sizes == {"en_glasgow": 2, "de": 1, "untagged": 1}


def test_dataset_config_lists_every_folder_with_its_tag_in_the_official_schema(written):
    folder, utts, codes, means = written
    config = yaml.safe_load((folder / "dataset_config.yaml").read_text())
    assert config["max_duration_sec"] == 40 and config["lenght_statistics"] is False
    by_tag = {e["language_tag"]: e for e in config["hf_datasets"]}
    assert set(by_tag) == {"en_glasgow", "de", None}
    seen = set()
    for tag, entry in by_tag.items():
        ds, texts = official_read(entry)
        assert {"text", "encoded_len", "speaker_emb", "nano_layer_1", "nano_layer_4"} <= set(
            ds.column_names)
        for row, text in zip(ds, texts):
            utt = next(u for u in utts if u.id == row["source"])
            assert (utt.tag or None) == tag
            assert text == tokens.format_text(utt.text, utt.tag)  # our prompt text is theirs
            frames = np.stack([row[f"nano_layer_{c}"] for c in range(1, 5)], 1)
            np.testing.assert_array_equal(frames, codes[utt.id].T)  # frames untouched
            assert row["encoded_len"] == len(frames)  # real length for the duration filter
            np.testing.assert_allclose(row["speaker_emb"], means[utt.speaker])
            seen.add(utt.id)
    assert seen == {u.id for u in utts}  # nothing lost or duplicated


def test_default_examples_drop_repeated_frames_as_the_official_prep_does():
    codes = clip_codes(3).T
    mask = np.insert(np.any(codes[1:] != codes[:-1], axis=1), 0, True)
    official = codes[mask]  # the official remove_consecutive_duplicates
    assert len(official) < len(codes)
    default = tokens.build_example([tokens.BOS, 40], codes)
    np.testing.assert_array_equal(tokens.parse_codes(default.input_ids), official)
    kept = tokens.build_example([tokens.BOS, 40], codes, drop_repeats=False)
    np.testing.assert_array_equal(tokens.parse_codes(kept.input_ids), codes)


def test_training_and_data_defaults_drop_repeated_frames():
    from data_tools.stages.write import WriteConfig
    from kani_adapt.training.config import TrainDataConfig

    assert WriteConfig().drop_repeated_frames and TrainDataConfig(train="d").drop_repeated_frames
