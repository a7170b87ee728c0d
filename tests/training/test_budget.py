"""`data.token_budget: auto`: choosing the budget from measured steps."""
import json

import pytest

from tests.helpers import REQUIRED
from kani_adapt.config.load import load_config
from kani_adapt.training import budget as auto
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.budget import AUTO_FALLBACK_BUDGET

GiB = 2**30


def linear_measurer(fixed: int, per_token: int, oom_above: float = float("inf")):
    calls = []

    def measure(tokens: int) -> int:
        calls.append(tokens)
        if tokens > oom_above:
            raise auto.DoesNotFit("out of memory")
        return fixed + per_token * tokens

    return measure, calls


def test_picks_the_largest_measured_budget_that_fits_with_the_margin():
    measure, calls = linear_measurer(fixed=1 * GiB, per_token=300_000)
    budget, measured = auto.pick_budget(measure, free_bytes=20 * GiB, fixed_bytes=2 * GiB,
                                        margin=0.1)
    usable = 20 * GiB * 0.9 - 2 * GiB
    assert measure(budget) <= usable  # what was chosen was measured to fit
    assert measure(budget + 2 * auto.ROUND_TO) > usable * 0.97  # and little was left unused
    assert budget % auto.ROUND_TO == 0 and calls[0] == auto.PROBE_BUDGET
    assert [b for b, _ in measured] == calls[:len(measured)]


def test_shrinks_when_the_probe_itself_does_not_fit():
    measure, calls = linear_measurer(fixed=0, per_token=1_000_000, oom_above=1500)
    budget, measured = auto.pick_budget(measure, free_bytes=2 * GiB, margin=0.1)
    assert budget <= 1500 and measure(budget) <= 2 * GiB * 0.9
    assert measured[0] == (auto.PROBE_BUDGET, -1)  # the out-of-memory probe is recorded


def test_an_estimate_that_does_not_fit_is_not_taken():
    # Memory grows faster than linearly: the linear estimate is too big, so it is measured,
    # refused, and a smaller one is tried.
    def measure(tokens):
        return int(200 * tokens ** 1.5)

    budget, measured = auto.pick_budget(measure, free_bytes=8 * GiB, fixed_bytes=1 * GiB,
                                        margin=0.25)
    usable = 8 * GiB * 0.75 - 1 * GiB
    assert measure(budget) <= usable
    assert any(m > usable for _, m in measured)


def test_nothing_fits_is_a_clear_error():
    measure, _ = linear_measurer(fixed=10 * GiB, per_token=1)
    with pytest.raises(auto.DoesNotFit, match="does not fit"):
        auto.pick_budget(measure, free_bytes=4 * GiB)


class FakeModule:
    trainer = None

    def __init__(self, run_dir):
        self.cfg = load_config(TrainConfig, None, [*REQUIRED, f"run_dir={run_dir}", "data.token_budget=auto"])
        import torch

        self.device = torch.device("cpu")


def test_without_cuda_auto_falls_back_and_a_resumed_run_reuses_the_choice(tmp_path):
    assert auto.resolve_auto_budget(FakeModule(tmp_path), 100, tmp_path) == AUTO_FALLBACK_BUDGET
    assert json.loads((tmp_path / auto.CHOSEN_FILE).read_text()) == {"token_budget": AUTO_FALLBACK_BUDGET}
    (tmp_path / auto.CHOSEN_FILE).write_text(json.dumps({"token_budget": 12288}))
    assert auto.resolve_auto_budget(FakeModule(tmp_path), 100, tmp_path) == 12288


def test_a_number_reaches_the_data_module_as_it_is_and_auto_becomes_the_probe(tmp_path):
    fixed = load_config(TrainConfig, None, [*REQUIRED, f"run_dir={tmp_path}", "data.token_budget=600"])
    assert auto.budget_for(fixed) == 600
    probe = auto.budget_for(FakeModule(tmp_path).cfg)
    assert isinstance(probe, auto.TokenBudgetProbe)
    with pytest.raises(RuntimeError, match="measured at fit start"):
        probe()  # nothing is planned with a budget that was not measured yet
    (tmp_path / auto.CHOSEN_FILE).write_text(json.dumps({"token_budget": 2048}))

    class Trainer:
        class datamodule:
            class train_set:
                lengths = [10, 300, 40]

    probe.on_fit_start(Trainer, FakeModule(tmp_path))
    assert probe() == 2048


def test_the_data_module_plans_its_batches_with_what_the_probe_measured(tmp_path, synth_data):
    from kani_adapt.training.data import GeneratorData
    from tests.helpers import tiny_generator

    cfg = load_config(TrainConfig, None, [f"data.train={synth_data}", "model.init=tiny",
                                          f"run_dir={tmp_path}", "data.token_budget=auto",
                                          "data.num_workers=0", "data.val_speakers=0"])
    chosen = []
    data = GeneratorData(cfg, tiny_generator()[1], lambda: chosen[-1])  # asked, not stored
    data.setup("fit")
    lengths = data.train_set.lengths
    plans = {}
    for budget in (max(lengths), 4 * max(lengths)):
        chosen.append(budget)
        plans[budget] = data._plan(data.train_set).plan(0)
        for batch in plans[budget]:
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
    assert len(plans[max(lengths)]) > len(plans[4 * max(lengths)])


def test_auto_is_accepted_and_other_words_are_refused():
    assert load_config(TrainConfig, None, [*REQUIRED, "data.token_budget=auto"]).data.token_budget == "auto"
    from kani_adapt.core.errors import ConfigError

    with pytest.raises(ConfigError):
        load_config(TrainConfig, None, [*REQUIRED, "data.token_budget=lots"])
