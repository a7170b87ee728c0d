import tarfile

import pytest
import torch
from omegaconf import OmegaConf

from kani_adapt.codec import nanocodec
from kani_adapt.codec.protocol import Codec
from kani_adapt.core.errors import CheckpointError, DataError
from tests.codec.corpus import tone


@pytest.fixture(scope="module")
def codec(tiny_nemo):
    return nanocodec.load_codec(str(tiny_nemo))


def test_tiny_codec_keeps_nanocodec_token_facts(codec):
    assert isinstance(codec, Codec)
    assert (codec.sample_rate, codec.samples_per_frame) == (22050, 1764)
    assert (codec.num_codebooks, codec.codebook_size) == (4, 4032)


def test_encode_pads_to_whole_frames_and_decode_gives_whole_frames(codec):
    audio = torch.from_numpy(tone(1.0, 200))[None].repeat(2, 1)
    lengths = torch.tensor([22050, 1764 * 5])
    codes, frames = codec.encode(audio, lengths)
    assert codes.dtype == torch.int64 and codes.shape == (2, 4, 13)
    assert frames.tolist() == [13, 5]  # ceil(22050 / 1764) = 13
    assert 0 <= int(codes.min()) and int(codes.max()) < 4032
    wave, samples = codec.decode(codes, frames)
    assert wave.shape == (2, 13 * 1764) and samples.tolist() == [13 * 1764, 5 * 1764]


def test_save_and_load_give_identical_tokens_and_audio(codec, tmp_path):
    audio = torch.from_numpy(tone(0.5, 300))[None]
    lengths = torch.tensor([audio.shape[1]])
    again = nanocodec.load_codec(str(nanocodec.save_model(codec.model, tmp_path / "again.nemo")))
    codes, frames = codec.encode(audio, lengths)
    assert torch.equal(codes, again.encode(audio, lengths)[0])
    assert torch.equal(codec.decode(codes, frames)[0], again.decode(codes, frames)[0])


def _rewrite_weights(src, dest, tmp_path, edit):
    folder = tmp_path / "x"
    with tarfile.open(src) as tar:
        tar.extractall(folder, filter="data")
    weights = next(folder.rglob("model_weights.ckpt"))
    state = torch.load(weights, weights_only=True)
    edit(state)
    torch.save(state, weights)
    with tarfile.open(dest, "w") as tar:
        for item in folder.iterdir():
            tar.add(item, arcname=item.name)
    return dest


@pytest.mark.parametrize("edit, word", [
    (lambda s: s.pop(next(k for k in s if k.startswith("audio_decoder."))), "1 missing"),
    (lambda s: s.__setitem__("audio_decoder.extra.weight", torch.zeros(1)), "1 unexpected"),
])
def test_loading_refuses_missing_or_unexpected_keys(tiny_nemo, tmp_path, edit, word):
    bad = _rewrite_weights(tiny_nemo, tmp_path / "bad.nemo", tmp_path, edit)
    with pytest.raises(CheckpointError, match=word):
        nanocodec.load_model(str(bad))


def test_not_a_nemo_file_is_a_checkpoint_error(tmp_path):
    junk = tmp_path / "junk.nemo"
    junk.write_bytes(b"not a tar")
    with pytest.raises(CheckpointError, match="junk.nemo"):
        nanocodec.load_model(str(junk))
    with pytest.raises(CheckpointError, match="no such .nemo file"):
        nanocodec.load_model(str(tmp_path / "missing.nemo"))


def test_bad_codes_are_data_errors(codec):
    with pytest.raises(DataError, match="0..4031"):
        codec.decode(torch.full((1, 4, 2), 4032), torch.tensor([2]))
    with pytest.raises(DataError, match="lengths"):
        codec.encode(torch.zeros(1, 100), torch.tensor([101]))


def test_slm_discriminator_is_dropped_offline_and_indices_remapped():
    cfg = OmegaConf.create({
        "use_slm_loss": True, "slm_encoder": {"x": 1}, "train_ds": {"y": 2},
        "discriminator": {"discriminators": [
            {"_target_": "a.SLMDiscriminator", "slm_model_name": "microsoft/wavlm-base-plus"},
            {"_target_": "a.MultiPeriodDiscriminator"}]},
    })
    clean, index_map = nanocodec.sanitize_config(cfg, keep_discriminator=True, slm_dir=None)
    assert not clean.use_slm_loss and "slm_encoder" not in clean and "train_ds" not in clean
    assert [d._target_ for d in clean.discriminator.discriminators] == ["a.MultiPeriodDiscriminator"]
    state = {"discriminator.discriminators.0.head.weight": 0, "discriminator.discriminators.1.w": 1,
             "audio_decoder.w": 2}
    assert nanocodec.remap_state_dict(state, index_map, True) == {
        "discriminator.discriminators.0.w": 1, "audio_decoder.w": 2}
    local, _ = nanocodec.sanitize_config(cfg, keep_discriminator=True, slm_dir="/models/wavlm")
    assert local.discriminator.discriminators[0].slm_model_name == "/models/wavlm"


def test_full_size_shape_matches_nanocodec_parameter_counts():
    model = nanocodec.build_model("0.6kbps", discriminators=())
    millions = [sum(p.numel() for p in m.parameters()) / 1e6
                for m in (model.audio_encoder, model.audio_decoder)]
    assert millions[0] == pytest.approx(30.3, abs=0.3) and millions[1] == pytest.approx(31.5, abs=0.3)
    assert model.num_codebooks == 4 and model.codebook_size == 4032


# --- .nemo files as published: NeMo-built twins in both weight-norm namings, SCL/SLM configs ---

def _to_pre_parametrization_weight_norm(model) -> int:
    """Swap torch's parametrized weight norm for the old hook-based one (weight_g/weight_v), as in
    files written before parametrizations existed. The weights themselves are unchanged."""
    from torch.nn.utils import parametrize

    swapped = 0
    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            torch.nn.utils.weight_norm(module, name="weight", dim=0)
            swapped += 1
    return swapped


def _state_keys(nemo_path, tmp_path):
    folder = tmp_path / "keys"
    with tarfile.open(nemo_path) as tar:
        tar.extractall(folder, filter="data")
    return set(torch.load(next(folder.rglob("model_weights.ckpt")), weights_only=True))


def _tokens_and_audio(codec):
    audio = torch.from_numpy(tone(0.4, 250, seed=3))[None]
    codes, frames = codec.encode(audio, torch.tensor([audio.shape[1]]))
    return codes, codec.decode(codes, frames)[0]


def _no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def old_naming(tmp_path_factory):
    """The same tiny NeMo codec saved by NeMo twice: parametrized names and weight_g/weight_v."""
    folder = tmp_path_factory.mktemp("wn")
    new = nanocodec.save_model(nanocodec.build_model("tiny", seed=4, discriminators=()),
                               folder / "new.nemo")
    model = nanocodec.build_model("tiny", seed=4, discriminators=())
    assert _to_pre_parametrization_weight_norm(model) > 10
    model.save_to(str(folder / "old.nemo"))
    return new, folder / "old.nemo"


def test_both_weight_norm_namings_load_to_the_same_codec(old_naming, tmp_path, monkeypatch):
    new, old = old_naming
    old_keys = _state_keys(old, tmp_path)
    assert any(k.endswith(".weight_g") for k in old_keys)
    assert not any(".parametrizations." in k for k in old_keys)
    _no_network(monkeypatch)
    codes_new, audio_new = _tokens_and_audio(nanocodec.load_codec(str(new)))
    codes_old, audio_old = _tokens_and_audio(nanocodec.load_codec(str(old)))
    assert torch.equal(codes_new, codes_old)
    torch.testing.assert_close(audio_old, audio_new, atol=1e-5, rtol=1e-4)


def test_a_weight_norm_tensor_missing_in_the_old_naming_is_still_refused(old_naming, tmp_path):
    _, old = old_naming
    bad = _rewrite_weights(old, tmp_path / "bad.nemo", tmp_path,
                           lambda s: s.pop(next(k for k in s if k.endswith(".weight_g"))))
    with pytest.raises(CheckpointError, match="1 missing"):
        nanocodec.load_model(str(bad))


@pytest.fixture(scope="module")
def scl_nemo(tmp_path_factory):
    """A codec NeMo built with ``use_scl_loss: true`` (its speaker-encoder download stubbed
    out for the build) and saved by NeMo, with an SLM loss section naming a hub model too."""
    from nemo.collections.tts.modules.audio_codec_modules import ResNetSpeakerEncoder

    cfg = nanocodec.model_config("tiny", discriminators=())
    cfg.use_scl_loss, cfg.scl_loss_scale = True, 0.1
    original = ResNetSpeakerEncoder.load_checkpoint
    ResNetSpeakerEncoder.load_checkpoint = lambda self, *a, **k: None
    try:
        from nemo.collections.tts.models import AudioCodecModel

        torch.manual_seed(5)
        model = AudioCodecModel(cfg=cfg).eval()
    finally:
        ResNetSpeakerEncoder.load_checkpoint = original
    assert model.speaker_encoder is not None
    path = tmp_path_factory.mktemp("scl") / "scl.nemo"
    model.save_to(str(path))
    _edit_config(path, lambda c: c.update({
        "use_slm_loss": True, "slm_loss_scale": 1.0,
        "slm_encoder": {"_target_": "nemo.collections.tts.modules.audio_codec_modules.SLMEncoder",
                        "slm_model_name": "facebook/w2v-bert-2.0"},
        "slm_predictor": {"_target_": "torch.nn.Linear", "in_features": 16, "out_features": 8},
    }))
    return path, model


def _edit_config(path, edit):
    import yaml

    folder = path.parent / (path.stem + "_x")
    with tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    cfg_file = next(folder.rglob("model_config.yaml"))
    data = yaml.safe_load(cfg_file.read_text())
    edit(data)
    cfg_file.write_text(yaml.safe_dump(data))
    with tarfile.open(path, "w") as tar:
        for item in folder.iterdir():
            tar.add(item, arcname=item.name)


def test_speaker_and_slm_losses_are_switched_off_and_nothing_is_fetched(scl_nemo, monkeypatch):
    path, built = scl_nemo
    _no_network(monkeypatch)
    model = nanocodec.load_model(str(path))
    assert not model.use_scl_loss and not model.use_slm_loss and model.slm_encoder is None
    assert not hasattr(model, "speaker_encoder")
    codec = nanocodec.NemoCodec(model)
    codes, audio = _tokens_and_audio(codec)
    expected_codes, expected_audio = _tokens_and_audio(nanocodec.NemoCodec(built))
    assert torch.equal(codes, expected_codes)
    torch.testing.assert_close(audio, expected_audio)


def test_decoder_fine_tuning_load_keeps_the_network_off(scl_nemo, monkeypatch):
    path, _ = scl_nemo
    _no_network(monkeypatch)
    model = nanocodec.load_model(str(path), discriminators=("mpd",))
    assert model.discriminator is not None and not model.use_scl_loss
