"""The accent judge against the publisher: a tiny twin of the CommonAccent English classifier was
built with SpeechBrain's own classes and run through SpeechBrain's EncoderClassifier
(tests/fixtures/commonaccent-ecapa-twin/build_twin.py); kani-adapt's reader must give the same
cosines, labels and embeddings, batched and one clip at a time. Then: files that try to run code
or allocate absurd sizes are refused, the posterior and the shift, and the honest gaps."""
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.scorers.accent import COSINE_SCALE, AccentID, shift

TWIN = Path(__file__).resolve().parents[1] / "fixtures" / "commonaccent-ecapa-twin"


@pytest.fixture(scope="module")
def reference():
    return np.load(TWIN / "reference.npz")


@pytest.fixture(scope="module")
def twin():
    return AccentID.load(str(TWIN), "cpu", batch_size=8)


def test_kani_adapt_reads_speechbrains_classifier_exactly(twin, reference):
    waves = [reference[f"signal{i}"] for i in range(3)]
    scores, embeddings = twin.classify(waves, 16000)
    np.testing.assert_allclose(scores, reference["batch_scores"], atol=1e-5)
    np.testing.assert_allclose(embeddings, reference["batch_embeddings"], atol=1e-5)
    assert [twin.labels[i] for i in scores.argmax(1)] == list(reference["top"])
    one = AccentID.load(str(TWIN), "cpu", batch_size=1)
    alone, _ = one.classify(waves, 16000)
    np.testing.assert_allclose(alone, reference["alone_scores"], atol=1e-5)
    assert twin.labels[:3] == ["us", "england", "australia"] and len(twin.labels) == 16


def test_posterior_is_the_softmax_of_the_scaled_cosines(twin, reference):
    post = twin.posteriors(reference["batch_scores"])
    z = np.exp(COSINE_SCALE * reference["batch_scores"][0])
    assert post[0, 3] == pytest.approx(z[3] / z.sum()) and post.sum(1) == pytest.approx(np.ones(3))


def _copy(tmp_path) -> Path:
    folder = tmp_path / "twin"
    shutil.copytree(TWIN, folder)
    return folder


def test_a_hyperparams_file_naming_other_code_is_refused_by_name_never_run(tmp_path):
    folder = _copy(tmp_path)
    text = (folder / "hyperparams.yaml").read_text()
    marker = tmp_path / "ran"
    hostile = text.replace("compute_features: !new:speechbrain.lobes.features.Fbank",
                           f"compute_features: !new:pathlib.Path.touch\n    self: {marker}\n"
                           "unused: !new:speechbrain.lobes.features.Fbank")
    (folder / "hyperparams.yaml").write_text(hostile)
    with pytest.raises(CheckpointError, match="pathlib.Path.touch, which kani-adapt does not build"):
        AccentID.load(str(folder), "cpu")
    assert not marker.exists()


def test_declared_sizes_are_checked_before_allocating_and_pickled_code_is_refused(tmp_path):
    folder = _copy(tmp_path)
    text = (folder / "hyperparams.yaml").read_text()
    (folder / "hyperparams.yaml").write_text(text.replace("[32, 32, 32, 32, 96]", "[32, 32, 32, 32, 9999999]"))
    with pytest.raises(CheckpointError, match="outside 1..4096"):
        AccentID.load(str(folder), "cpu")
    (folder / "hyperparams.yaml").write_text(text)
    import pickle

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pickled",))
    (folder / "classifier.ckpt").write_bytes(pickle.dumps({"weight": Boom()}))
    with pytest.raises(CheckpointError, match="not a plain tensor checkpoint"):
        AccentID.load(str(folder), "cpu")
    assert not (tmp_path / "pickled").exists()


def test_a_label_the_classifier_lacks_is_a_config_error(tmp_path):
    from kani_adapt.scorers.accent import load_scorer
    from kani_adapt.scorers.config import ScorerConfig
    from kani_adapt.scorers.registry import Setup
    from kani_adapt.text.tags import Tag

    setup = Setup(ScorerConfig(accent_classifiers={"en": str(TWIN)}),
                  {"en_glasgow": Tag(accent_label="glasgow")})
    with pytest.raises(ConfigError, match="'glasgow' is not a label"):
        load_scorer(setup, "cpu")


def test_rows_say_why_a_figure_is_not_measured(reference):
    from kani_adapt.scorers.accent import load_scorer, score
    from kani_adapt.scorers.config import ScorerConfig
    from kani_adapt.scorers.registry import Clip, Setup
    from kani_adapt.text.tags import Tag

    tags = {"en_scotland": Tag(accent_label="scotland"), "en": Tag(), "de_hessian": Tag(accent_label="hessian")}
    setup = Setup(ScorerConfig(accent_classifiers={"en": str(TWIN)}), tags)
    judge = load_scorer(setup, "cpu")
    wave = reference["signal1"]
    clips = [Clip(wave, "t", "s", tag) for tag in ("en_scotland", "en", "de_hessian")]
    rows = [{}, {}, {}]
    score(judge, setup, clips, 16000, rows)
    scot, plain, german = rows
    assert 0 < scot["accent_posterior"] < 1 and scot["accent_top"] in judge.models["en"].labels
    assert "no base-accent recordings for language en" in scot["accent_reason"]  # shift only
    assert math.isnan(plain["accent_posterior"]) and "names no accent_label" in plain["accent_reason"]
    assert "no accent classifier for language de" in german["accent_reason"]


def test_shift_is_cosine_to_the_tags_recordings_minus_cosine_to_the_base():
    e1, e2, g = [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]
    df = pd.DataFrame([
        dict(checkpoint="recordings", tag="x", accent_embedding=e1, accent_base_cosine=0.1),
        dict(checkpoint="recordings", tag="x", accent_embedding=e2, accent_base_cosine=0.2),
        dict(checkpoint="m", tag="x", accent_embedding=g, accent_base_cosine=0.5),
        dict(checkpoint="m", tag="y", accent_embedding=g, accent_base_cosine=0.5),
        dict(checkpoint="m", tag="x", accent_embedding=None, accent_base_cosine=math.nan)])
    out = shift(df)["accent_shift"].tolist()
    centroid = np.array([1.0, 1.0]) / np.sqrt(2)
    assert out[0] == pytest.approx(1.0 * 0 + 0.0 * 1 - 0.1)  # a recording: centroid of the others
    assert out[1] == pytest.approx(0.0 - 0.2)
    assert out[2] == pytest.approx(float(np.array(g) @ centroid) - 0.5)
    assert math.isnan(out[3]) and math.isnan(out[4])  # no recordings of tag y; no embedding
