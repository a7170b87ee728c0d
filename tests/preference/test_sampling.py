"""Rollouts are sampled in batches of ``sample.batch`` rows, each row stopped at its own frame
cap; every rollout of every batch gets its codes, conditioned and unconditioned ones apart."""
import numpy as np

from kani_adapt.models.generator.bundle import Generator
from kani_adapt.preference.config import SampleConfig
from kani_adapt.preference.duration import DurationModel
from kani_adapt.preference.prompts import Prompt
from kani_adapt.preference.rollouts import plan, sample
from tests.helpers import tiny_generator


def test_every_rollout_of_several_batches_gets_codes_within_its_own_cap():
    model, tok = tiny_generator(seed=0)
    model.eval()
    generator = Generator(model, tok)
    voices = {"a": np.ones(128, np.float32) / np.sqrt(128), "b": None}
    prompts = [Prompt(t, "short", "de") for t in ("ja", "guten morgen", "eins zwei drei vier")]
    durations = {"de": DurationModel(0.0, 0.08, 0.0, 10, 0.0)}
    cfg = SampleConfig(rollouts=2, speakers_per_text=2, batch=3, cap_factor=2.0, cap_min=2, cap_max=6,
                       onset_guidance=1.0, temperature=1.0)
    rolled = plan(generator, prompts, "train", voices, durations, cfg, np.random.default_rng(0))
    assert len(rolled) == 12 and {r.cap for r in rolled} == {2, 4, 6}  # caps differ by text
    sample(generator, rolled, cfg, round_seed=1)  # 12 rows in batches of 3: several batches
    for r in rolled:
        assert r.codes is not None and r.codes.shape[1] == 4 and len(r.codes) <= r.cap
        assert not r.truncated or len(r.codes) == r.cap  # only the cap truncates
    assert any(r.speaker_emb is None for r in rolled) and any(r.speaker_emb is not None for r in rolled)
