"""A .nemo saved with the SLM (semantic distillation) loss on: NeMo stores the trained
``slm_predictor.*`` weights; encoding, decoding and decoder fine-tuning load it offline without
them. The twin is built and saved by NeMo itself, with a tiny local w2v-BERT as its SLM."""
from __future__ import annotations

import shutil
import tarfile

import pytest
import torch

from kani_adapt.codec import nanocodec
from kani_adapt.core.model_files import torch_load
from tests.codec.test_nanocodec import _no_network, _tokens_and_audio

MODULES = "nemo.collections.tts.modules.audio_codec_modules"


@pytest.fixture(scope="module")
def slm_nemo(tmp_path_factory):
    from nemo.collections.tts.models import AudioCodecModel
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    folder = tmp_path_factory.mktemp("slm")
    encoder_dir = folder / "w2v-bert-tiny"
    torch.manual_seed(0)
    Wav2Vec2BertModel(Wav2Vec2BertConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        output_hidden_size=16, conv_depthwise_kernel_size=3)).save_pretrained(encoder_dir)
    SeamlessM4TFeatureExtractor().save_pretrained(encoder_dir)
    cfg = nanocodec.model_config("tiny", discriminators=())
    cfg.use_slm_loss, cfg.slm_loss_scale = True, 1.0
    cfg.slm_encoder = {"_target_": f"{MODULES}.SLMEncoder", "slm_model_name": str(encoder_dir),
                       "hidden_layer": 1}
    cfg.slm_predictor = {"_target_": f"{MODULES}.SLMPredictor", "in_channels": 16,
                         "hidden_dim": 24, "out_channels": 16, "up_sample_rate": 4}
    torch.manual_seed(6)
    model = AudioCodecModel(cfg=cfg).eval()
    assert model.slm_predictor is not None
    path = folder / "slm.nemo"
    model.save_to(str(path))
    shutil.rmtree(encoder_dir)  # who receives the file has no copy of the SLM
    return path, model


def _stored_keys(path, tmp_path):
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    return set(torch_load(next((tmp_path / "x").rglob("model_weights.ckpt"))))


def test_the_twin_stores_slm_predictor_weights(slm_nemo, tmp_path):
    keys = _stored_keys(slm_nemo[0], tmp_path)
    assert any(k.startswith("slm_predictor.") for k in keys)
    assert not any(k.startswith("slm_encoder.") for k in keys)  # NeMo never stores the SLM


def test_encoding_and_decoding_load_without_the_slm(slm_nemo, monkeypatch):
    path, built = slm_nemo
    _no_network(monkeypatch)
    model = nanocodec.load_model(str(path))
    assert not model.use_slm_loss and model.slm_predictor is None
    codes, audio = _tokens_and_audio(nanocodec.NemoCodec(model))
    expected_codes, expected_audio = _tokens_and_audio(nanocodec.NemoCodec(built))
    assert torch.equal(codes, expected_codes)
    torch.testing.assert_close(audio, expected_audio)


def test_decoder_fine_tuning_loads_without_the_slm(slm_nemo, monkeypatch):
    _no_network(monkeypatch)
    model = nanocodec.load_model(str(slm_nemo[0]), discriminators=("mpd",))
    assert model.discriminator is not None and model.slm_predictor is None
