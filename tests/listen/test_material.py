"""What a listening test plays: systems and items of eval folders, loudness-matched clips, the
low anchor."""
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from kani_adapt.core.errors import DataError
from kani_adapt.listen.material import ANCHOR, REFERENCE, load_material
from kani_adapt.audio import loudness
from kani_adapt.listen.playback import Playback


def test_an_eval_folder_gives_systems_items_and_hidden_references(eval_dir):
    mat = load_material([eval_dir])
    assert mat.systems == ["adapted", "base", "codec_roundtrip", "recording"]
    assert sorted(mat.items) == ["anna-0", "anna-1", "bernd-0", "bernd-1"]
    assert all(i.reference_system == "recording" and i.reference.is_file() for i in mat.items.values())
    assert mat.describe("de") == "standard German" and mat.describe("xx") == "xx"
    assert mat.languages == {"de": "de", "en": "en"}


def test_each_tag_s_language_and_description_come_from_the_eval_folder(eval_dir):
    from kani_adapt.listen.analysis import listener_cer

    def cer_of_3_for_tatu(language: str) -> float:  # a listener typed "3" for Swahili "tatu"
        meta["tags"]["de"]["language"] = language  # the eval's own facts
        (eval_dir / "eval.json").write_text(json.dumps(meta))
        mat = load_material([eval_dir])
        item = next(i for i in mat.items.values() if i.tag == "de")
        item.text = "tatu"
        return listener_cer({"item": item.id, "answer": "3"}, mat)

    meta = json.loads((eval_dir / "eval.json").read_text())
    assert cer_of_3_for_tatu("sw") == 0.0 and cer_of_3_for_tatu("de") > 0.5  # "drei"
    old = {k: v for k, v in meta.items() if k != "tags"}  # a folder of an earlier version
    (eval_dir / "eval.json").write_text(json.dumps({**old, "tag_descriptions": {"de": "Hessian"}}))
    assert load_material([eval_dir]).describe("de") == "Hessian"


def test_a_reference_that_says_other_words_is_no_reference(eval_dir):
    df = pd.read_parquet(eval_dir / "utterances.parquet")
    df.loc[(df.checkpoint == "codec_roundtrip") & (df["item"] == "anna0"), "text"] = "something else"
    df.to_parquet(eval_dir / "utterances.parquet", index=False)
    mat = load_material([eval_dir])
    assert mat.items["anna-0"].reference is None
    assert mat.systems_of("anna-0") == ["adapted", "base"] and len(mat.systems_of("anna-1")) == 4


def test_several_eval_folders_share_items_and_their_common_checkpoint(eval_dir, tmp_path):
    other = shutil.copytree(eval_dir, tmp_path / "r64" / "eval")
    meta = json.loads((other / "eval.json").read_text())
    meta["checkpoints"]["adapted"] = "/elsewhere/r64"  # another adapter, the same base
    (other / "eval.json").write_text(json.dumps(meta))
    mat = load_material([eval_dir, other])
    assert mat.systems == ["adapted", "base", "r64.adapted", "codec_roundtrip", "recording"]
    assert mat.clips[("r64.adapted", "anna-0")].is_relative_to(other)
    assert mat.clips[("base", "anna-0")].is_relative_to(eval_dir)  # one system, its first folder

    df = pd.read_parquet(other / "utterances.parquet")
    df.loc[df["item"] == "anna-0", "text"] = "another sentence"
    df.to_parquet(other / "utterances.parquet", index=False)
    with pytest.raises(DataError, match="item anna-0 says 'another sentence'.*same eval set"):
        load_material([eval_dir, other])


def _served(playback, system, item):
    audio, rate = sf.read(io.BytesIO(playback.wav(system, item)))
    return audio, rate


def test_every_stimulus_plays_at_the_same_loudness_without_clipping(eval_dir):
    mat = load_material([eval_dir])
    playback = Playback(mat, target=-26.0)
    raw = {s: loudness(*sf.read(mat.clips[(s, "anna-0")])) for s in ("adapted", "base")}
    assert raw["adapted"] - raw["base"] > 8  # base was written 12 dB quieter
    for system in [*mat.systems, REFERENCE, ANCHOR]:
        audio, rate = _served(playback, system, "anna-0")
        assert abs(loudness(audio, rate) + 26.0) < 0.5, system
        assert np.abs(audio).max() <= 1.0


def test_the_low_anchor_is_the_reference_without_its_highs(eval_dir):
    playback = Playback(load_material([eval_dir]))
    ref, rate = _served(playback, REFERENCE, "bernd-0")
    anchor, _ = _served(playback, ANCHOR, "bernd-0")

    def high_share(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        return spectrum[freqs > 4500].sum() / spectrum.sum()

    assert len(anchor) == len(ref) and high_share(anchor) < 0.05 * high_share(ref)
