"""Our speaker embedder against the official runtime's ``EmbeddingsModel`` on a saved twin."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from kani_adapt.models.speaker import embedder
from tests.conformance.twins import official_speaker_embedder
from tests.helpers import copy_dir


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spk") / "speaker-emb-tbr"
    return official_speaker_embedder(folder), folder


def clips(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) * s for n, s in ((8000, 0.1), (5000, 0.5), (12000, 1.0))]


def official_one_by_one(model, audio):
    with torch.no_grad():
        return torch.cat([model(c[None]) for c in audio])


def test_folder_twin_embeds_like_the_official_model_in_a_padded_batch(twin):
    official, folder = twin
    ours = embedder.load(str(folder))
    audio = clips()
    batch, lengths = embedder.pad([c.numpy() for c in audio])
    with torch.no_grad():
        got = ours(batch, lengths)
    expected = official_one_by_one(official, audio)
    assert got.shape == (3, 128)
    assert (got - expected).abs().max() <= 1e-5


def test_padded_batch_equals_one_clip_at_a_time(twin):
    ours = embedder.load(str(twin[1]))
    audio = [c.numpy() for c in clips(1)]
    together = ours.embed(audio, batch_size=3)
    alone = np.concatenate([ours.embed([a]) for a in audio])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_hub_id_loads_offline_through_the_hugging_face_cache(twin, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    official, folder = twin
    revision = "1" * 40
    repo = tmp_path / "hf" / "hub" / "models--nineninesix--speaker-emb-tbr"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    copy_dir(folder, repo / "snapshots" / revision)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    ours = embedder.load("nineninesix/speaker-emb-tbr")
    audio = clips(2)
    got = ours.embed([c.numpy() for c in audio])
    assert np.abs(got - official_one_by_one(official, audio).numpy()).max() <= 1e-5


def test_pre_parametrization_weight_norm_names_load(twin, tmp_path):
    """Files saved by older transformers name the positional conv's weight norm weight_g/v."""
    official, folder = twin
    old = copy_dir(folder, tmp_path / "old")
    state = load_file(str(old / "model.safetensors"))
    prefix = "wavlm.encoder.pos_conv_embed.conv."
    state[prefix + "weight_g"] = state.pop(prefix + "parametrizations.weight.original0")
    state[prefix + "weight_v"] = state.pop(prefix + "parametrizations.weight.original1")
    save_file(state, str(old / "model.safetensors"))
    audio = clips(3)
    got = embedder.load(str(old)).embed([c.numpy() for c in audio])
    assert np.abs(got - official_one_by_one(official, audio).numpy()).max() <= 1e-5


def test_other_sample_rates_are_resampled_to_16k(twin):
    import soxr

    official, folder = twin
    ours = embedder.load(str(folder))
    clip = clips(4)[2].numpy()
    at_16k = torch.from_numpy(soxr.resample(clip, 44100, 16000).astype(np.float32))
    got = ours.embed([clip], sample_rate=44100)
    assert np.abs(got - official_one_by_one(official, [at_16k]).numpy()).max() <= 1e-5
