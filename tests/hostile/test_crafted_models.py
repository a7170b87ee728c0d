"""Crafted model files are refused before anything is allocated, in one line naming the file.

Sizes that would need terabytes, sizes of the wrong type, safetensors headers that lie about
their tensors, a tokenizer that does not parse, and torch's own out-of-memory errors.
"""
from __future__ import annotations

import json
import shutil
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.core.cli_kit import run_guarded
from kani_adapt.cli.main import main
from tests.hostile.refusals import assert_refused

# In range one by one, absurd together: about 8.8 T parameters, 35 TB in fp32.
HUGE = {"hidden_size": 65536, "num_hidden_layers": 64, "intermediate_size": 1 << 20,
        "layer_types": ["conv"] * 64}


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit_config(folder, **values):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))
    return folder


def _generate(model, tmp_path):
    return ["generate", str(model), "--text", "hallo", "--tag", "de",
            "--out", str(tmp_path / "codes.npy"), "--max-frames", "2"]


def _refused_without_allocating(argv, capsys, *fragments):
    """One line, and the attempt itself allocated little (no model of the claimed size)."""
    tracemalloc.start()
    try:
        line = assert_refused(main, argv, capsys, *fragments)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, f"{peak / 2**20:.0f} MiB traced before refusing"
    return line


def test_a_generator_config_implying_terabytes_is_refused_before_building(tiny_generator,
                                                                          tmp_path, capsys):
    model = _edit_config(_copy(tiny_generator, tmp_path / "model"), **HUGE)
    line = _refused_without_allocating(_generate(model, tmp_path), capsys, "config.json",
                                       "G parameters", "GiB are available")
    assert not (tmp_path / "codes.npy").exists(), line


def test_train_from_a_base_implying_terabytes_is_refused(tiny_generator, tmp_path, capsys,
                                                         synth_data):
    model = _edit_config(_copy(tiny_generator, tmp_path / "model"), **HUGE)
    _refused_without_allocating(
        ["train", f"run_dir={tmp_path / 'run'}", f"model.init={model}", f"data.train={synth_data}",
         "trainer.device=cpu"], capsys, "config.json", "GiB")


@pytest.mark.parametrize("key, value", [("hidden_size", "big"), ("num_hidden_layers", 2.5),
                                        ("rope_theta", "NaN"), ("num_attention_heads", 0),
                                        ("num_key_value_heads", 3), ("hidden_size", None),
                                        ("num_attention_heads", None)])
def test_a_size_of_the_wrong_type_or_range_is_named(tiny_generator, tmp_path, capsys, key, value):
    model = _edit_config(_copy(tiny_generator, tmp_path / "model"), **{key: value})
    assert_refused(main, _generate(model, tmp_path), capsys, "config.json", key)


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    from kani_adapt.models.speaker import embedder

    return embedder.save(embedder.build(seed=0), tmp_path_factory.mktemp("spk") / "emb")


def _speaker_emb(folder, tmp_path):
    ref = tmp_path / "ref.wav"
    sf.write(ref, (0.1 * np.sin(np.arange(16000) / 7)).astype(np.float32), 16000)
    return ["speaker-emb", str(ref), "--model", str(folder), "--out", str(tmp_path / "v.npy")]


@pytest.mark.parametrize("values, fragment", [
    ({"hidden_size": 32768, "num_hidden_layers": 512, "intermediate_size": 1 << 18,
      "num_attention_heads": 64}, "GiB are available"),
    ({"hidden_size": "big"}, "hidden_size"),
    ({"hidden_size": None}, "hidden_size is null"),
    ({"conv_dim": [32, "x", 32]}, "conv_dim"),
])
def test_a_crafted_speaker_embedder_config_is_refused(tiny_embedder, tmp_path, capsys, values,
                                                      fragment):
    folder = _edit_config(_copy(tiny_embedder, tmp_path / "emb"), **values)
    _refused_without_allocating(_speaker_emb(folder, tmp_path), capsys, "config.json", fragment)
    assert not (tmp_path / "v.npy").exists()


def _rewrite_header(path, edit):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])


def _first(header):
    return header[next(k for k in sorted(header) if k != "__metadata__")]


def _overlap(header):
    names = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    first, second = header[names[0][1]], header[names[1][1]]
    second["data_offsets"] = [first["data_offsets"][0],
                              first["data_offsets"][0] + second["data_offsets"][1]
                              - second["data_offsets"][0]]


@pytest.mark.parametrize("edit, fragment", [
    (lambda h: _first(h).update(shape=[2 ** 31, 2 ** 31]), "needs"),
    (lambda h: _first(h).update(dtype="Q7"), "unknown dtype"),
    (_overlap, "overlaps"),
])
def test_a_safetensors_header_that_lies_is_refused(tiny_generator, tmp_path, capsys, edit, fragment):
    model = _copy(tiny_generator, tmp_path / "model")
    _rewrite_header(model / "model.safetensors", edit)
    assert_refused(main, _generate(model, tmp_path), capsys, "model.safetensors", fragment)


def test_the_library_error_of_an_unusual_file_is_one_line_too(tiny_generator, tmp_path, capsys):
    """Bytes after the last tensor: the format allows no gap; named as such."""
    model = _copy(tiny_generator, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0" * 16)
    assert_refused(main, _generate(model, tmp_path), capsys, "model.safetensors", "bytes")


@pytest.mark.parametrize("damage", ["cut", "wrong type"])
def test_a_damaged_tokenizer_is_one_line(tiny_generator, tmp_path, capsys, damage):
    model = _copy(tiny_generator, tmp_path / "model")
    tok = model / "tokenizer.json"
    text = tok.read_text()
    tok.write_text(text[: len(text) // 2] if damage == "cut" else
                   '{"model": {"type": "BPE", "vocab": 5}}')
    assert_refused(main, _generate(model, tmp_path), capsys, "tokenizer", "does not load")


class _Args:
    verbose = False


@pytest.mark.parametrize("make", [
    lambda: __import__("torch").empty(1 << 50, dtype=__import__("torch").uint8),  # real CPU OOM
    lambda: (_ for _ in ()).throw(__import__("torch").OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.15 GiB total capacity)")),
])
def test_torch_out_of_memory_is_one_line_and_exit_2(capsys, make):
    assert run_guarded(lambda args: make(), _Args()) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory: ") and err.count("\n") == 1, err


def test_other_runtime_errors_keep_their_traceback():
    with pytest.raises(RuntimeError, match="a bug"):
        run_guarded(lambda args: (_ for _ in ()).throw(RuntimeError("a bug")), _Args())


def test_a_nemo_config_goes_through_the_yaml_guard(tmp_path, capsys):
    import tarfile

    import torch

    from tests.hostile.test_model_files import _codec_check

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    (tmp_path / "model_config.yaml").write_text(bomb)
    torch.save({}, tmp_path / "model_weights.ckpt")
    bad = tmp_path / "bomb.nemo"
    with tarfile.open(bad, "w") as tar:
        for name in ("model_config.yaml", "model_weights.ckpt"):
            tar.add(tmp_path / name, arcname=f"./{name}")
    assert_refused(main, _codec_check(bad, tmp_path), capsys, "bomb.nemo", "aliases expand")
