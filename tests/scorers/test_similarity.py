"""Speaker similarity through the KaniTTS2 speaker embedder folder format and a tiny WavLM x-vector."""
import numpy as np
import pytest

from kani_adapt.scorers.similarity import SpeakerSimilarity, anchors, cosine


def _voice(f0: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def kani_folder(tmp_path_factory):
    from kani_adapt.models.speaker import embedder as speaker_embedder

    return speaker_embedder.save(speaker_embedder.build(seed=0),
                                 tmp_path_factory.mktemp("spk") / "embedder")


@pytest.mark.slow
def test_kani_embedder_loads_from_folder_and_batches_like_single_clips(kani_folder):
    sim = SpeakerSimilarity.load(str(kani_folder), kind="kani", device="cpu", batch_size=3)
    clips = [_voice(120, 1.0, 0), _voice(120, 1.7, 1), _voice(240, 0.6, 2), _voice(240, 1.2, 3)]
    batched = sim.embed(clips, 16000)
    single = np.concatenate([sim.embed([c], 16000) for c in clips])
    assert batched.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    # a resampled copy of the same clip is (almost) the same voice
    import soxr
    again = sim.embed([soxr.resample(clips[0], 16000, 22050)], 22050)
    assert cosine(again, batched[:1])[0] > 0.95


def test_anchors_give_same_speaker_ceiling_and_different_speaker_floor():
    e = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0.6, 0.8]], dtype=np.float32)
    got = anchors(e, ["a", "a", "b", "b"])
    assert got.ceiling == pytest.approx((0.8 + 0.6) / 2)
    assert got.floor == pytest.approx((0 + 0 + 0.6 + 0.36) / 4)
    assert np.isnan(anchors(e[:2], ["a", "b"]).ceiling)


def test_wavlm_xvector_loads_from_folder(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    from kani_adapt.models.speaker.embedder import TINY_WAVLM

    model = WavLMForXVector(WavLMConfig(**TINY_WAVLM, tdnn_dim=(16, 16), tdnn_kernel=(3, 1),
                                        tdnn_dilation=(1, 1), xvector_output_dim=24))
    model.save_pretrained(tmp_path / "xv")
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path / "xv")
    sim = SpeakerSimilarity.load(str(tmp_path / "xv"), kind="wavlm-xvector", device="cpu")
    out = sim.embed([_voice(120, 1.0, 0), _voice(200, 0.5, 1)], 16000)
    assert out.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_an_empty_clip_gets_a_nan_embedding_and_the_others_are_embedded_as_alone():
    seen = []

    def embedder(clips):
        assert all(len(c) for c in clips)  # the embedder never sees an empty clip
        seen.extend(len(c) for c in clips)
        return np.stack([np.array([len(c), 1.0, 0.0], dtype=np.float32) for c in clips])

    sim = SpeakerSimilarity(embedder, batch_size=2)
    clips = [_voice(120, 0.5, 0), np.zeros(0, np.float32), _voice(200, 0.25, 1)]
    got = sim.embed(clips, 16000)
    assert got.shape == (3, 3) and np.isnan(got[1]).all() and sorted(seen) == [4000, 8000]
    np.testing.assert_allclose(got[[0, 2]], np.concatenate([sim.embed([clips[0]], 16000),
                                                            sim.embed([clips[2]], 16000)]))
    assert np.isnan(cosine(got[1], got[0]))
    assert np.isnan(sim.embed([np.zeros(0, np.float32)], 16000)).all()
