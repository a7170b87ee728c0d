"""Crafted model files are refused with one line naming the file, never a traceback."""
from __future__ import annotations

import shutil
import struct

import pytest

from kani_adapt.cli.main import main
from tests.hostile.refusals import assert_refused, plant_payload


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _generate(model, tmp_path):
    return ["generate", str(model), "--text", "hallo", "--tag", "de",
            "--out", str(tmp_path / "codes.npy"), "--max-frames", "2"]


def test_generator_weights_with_a_corrupt_header_are_refused(tiny_generator, tmp_path, capsys):
    model = _copy(tiny_generator, tmp_path / "model")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    # A header length far beyond the file, then garbage where the JSON header should be.
    weights.write_bytes(struct.pack("<Q", 1 << 40) + b"{not json" + data[20:200])
    assert_refused(main, _generate(model, tmp_path), capsys, "model.safetensors")
    assert not (tmp_path / "codes.npy").exists()


def test_generator_weights_cut_short_are_refused(tiny_generator, tmp_path, capsys):
    model = _copy(tiny_generator, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_refused(main, _generate(model, tmp_path), capsys, "model.safetensors")


def test_config_json_that_is_not_json_is_refused(tiny_generator, tmp_path, capsys):
    model = _copy(tiny_generator, tmp_path / "model")
    (model / "config.json").write_text("{'model_type': lfm2,")
    assert_refused(main, _generate(model, tmp_path), capsys, "config.json")


def test_config_json_that_is_a_list_is_refused(tiny_generator, tmp_path, capsys):
    model = _copy(tiny_generator, tmp_path / "model")
    (model / "config.json").write_text("[1, 2, 3]")
    assert_refused(main, _generate(model, tmp_path), capsys, "config.json")


@pytest.fixture(scope="module")
def tiny_nemo(tmp_path_factory):
    from kani_adapt.codec.nanocodec import build_model, save_model

    path = tmp_path_factory.mktemp("codec") / "tiny.nemo"
    return save_model(build_model("tiny", seed=0, discriminators=()), path)


def _codec_check(codec, tmp_path):
    from tests.codec.corpus import write_corpus

    manifest = write_corpus(tmp_path / "corpus", clips_per_speaker=1, seconds=0.5)
    return ["codec", "check", "--codec", str(codec), "--manifest", str(manifest),
            "--out", str(tmp_path / "report")]


def test_truncated_nemo_is_refused(tiny_nemo, tmp_path, capsys):
    bad = tmp_path / "cut.nemo"
    bad.write_bytes(tiny_nemo.read_bytes()[: tiny_nemo.stat().st_size // 3])
    assert_refused(main, _codec_check(bad, tmp_path), capsys, "cut.nemo")


def test_nemo_whose_weights_need_unpickling_is_refused(tiny_nemo, tmp_path, capsys):
    import tarfile

    marker = tmp_path / "marker"
    weights = plant_payload(tmp_path / "model_weights.ckpt", marker)
    (tmp_path / "model_config.yaml").write_text("target: x\n")
    bad = tmp_path / "payload.nemo"
    with tarfile.open(bad, "w") as tar:
        tar.add(weights, arcname="./model_weights.ckpt")
        tar.add(tmp_path / "model_config.yaml", arcname="./model_config.yaml")
    assert_refused(main, _codec_check(bad, tmp_path), capsys, "payload.nemo")
    assert not marker.exists()


def test_nemo_that_is_not_an_archive_is_refused(tmp_path, capsys):
    bad = tmp_path / "text.nemo"
    bad.write_text("hello")
    assert_refused(main, _codec_check(bad, tmp_path), capsys, "text.nemo")
