"""The speaker embedder's own behaviour: one layout (the publisher's), refusals, unit vectors."""
import json

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from kani_adapt.core.errors import CheckpointError, DataError
from kani_adapt.models.speaker import embedder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return embedder.save(embedder.build(seed=3), tmp_path_factory.mktemp("emb") / "emb")


def test_saved_folder_is_a_wavlm_config_with_head_sizes_and_published_names(saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["model_type"] == "wavlm"
    assert (config["embd_size"], config["top_interm_size"]) == (128, 512)
    names = set(load_file(str(saved / "model.safetensors")))
    assert {"top_layers.affine1.weight", "top_layers.affine2.bias",
            "top_layers.batchnorm1.running_var", "top_layers.batchnorm2.running_mean"} <= names
    assert all(n.startswith(("wavlm.", "top_layers.")) for n in names)


def test_save_then_load_gives_the_same_unit_vectors(saved):
    model = embedder.load(str(saved))
    again = embedder.load(str(saved))
    audio = [np.random.default_rng(i).standard_normal(n).astype(np.float32) * 0.3
             for i, n in enumerate((16000, 9000))]
    a, b = model.embed(audio), again.embed(audio)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)


def test_batchnorm_uses_the_publishers_eps(saved):
    model = embedder.load(str(saved))
    assert model.top_layers.batchnorm1.eps == model.top_layers.batchnorm2.eps == 1e-3


def test_missing_weights_are_refused_not_randomly_initialised(saved, tmp_path):
    import shutil

    folder = shutil.copytree(saved, tmp_path / "broken")
    state = load_file(str(folder / "model.safetensors"))
    state.pop("top_layers.batchnorm2.running_var")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="model.safetensors.*batchnorm2.running_var"):
        embedder.load(str(folder))


def test_a_config_that_is_not_the_published_layout_is_refused(saved, tmp_path):
    import shutil

    folder = shutil.copytree(saved, tmp_path / "invented")
    (folder / "config.json").write_text(json.dumps({"architecture": "speaker-wavlm-tbr"}))
    with pytest.raises(CheckpointError, match="config.json is not a WavLM speaker-embedder"):
        embedder.load(str(folder))


def test_empty_or_multichannel_clips_are_data_errors(saved):
    model = embedder.load(str(saved))
    with pytest.raises(DataError, match="mono and non-empty"):
        model.embed([np.zeros(0, np.float32)])
    with pytest.raises(DataError, match="mono and non-empty"):
        model.embed([np.zeros((2, 100), np.float32)])


def test_references_longer_than_30_s_are_cut_like_the_official_runtime():
    long = np.random.default_rng(0).standard_normal(16000 * 31).astype(np.float32)
    assert len(embedder.prepare(long, 16000)) == 16000 * 30
    assert len(embedder.prepare(long[:22050], 22050)) == 16000
