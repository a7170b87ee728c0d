import tarfile

import pytest
import torch
from omegaconf import OmegaConf

from kani_adapt.codec import nanocodec
from kani_adapt.codec.protocol import Codec
from kani_adapt.errors import CheckpointError, DataError
from tests.codec.conftest import tone


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
